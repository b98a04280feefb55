/**
 * What `plan lint` and `plan report` read over a range of days: CSV objects of one kind (tracking files,
 * violation files) summed up by DuckDB, through the jobs' own machinery (staging, memory limit, spill).
 * Malformed rows are skipped: a report over history must not stop at one bad line.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withJob, type JobResources } from '../jobs/context.js';
import { sqlIn, sqlString } from '../jobs/engine.js';
import { listCsv } from '../jobs/staging.js';
import { relationSql } from '../jobs/tracks.js';
import { dayPath } from '../lib/dates.js';
import type { ObjectStore } from '../storage/store.js';

const SQL_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sql');

/** A plan command's SQL file (src/plan/sql). */
export const planSql = (name: string, slots: Record<string, string>) => sqlIn(SQL_DIR, name, slots);

/** The {{tenant}} slot: a string literal, or NULL for every tenant. */
export const tenantSlot = (tenant: string | undefined) => (tenant === undefined ? 'NULL' : sqlString(tenant));

export interface CsvKind {
  /** The folder under which each day's files lie (`tracks`, `violations`). */
  prefix: string;
  header: string;
  types: Record<string, string>;
}

/**
 * Runs `select` (a function of the relation over the days' files) and returns its rows, with the files
 * skipped for a wrong header. BIGINT results come back as bigint; cast counts to DOUBLE in the query.
 */
export async function queryDays<T>(store: ObjectStore, resources: JobResources, kind: CsvKind, days: readonly string[], select: (from: string) => string): Promise<{ rows: T[]; files: number; skipped: string[] }> {
  const objects = (await Promise.all(days.map((d) => listCsv(store, `${kind.prefix}/${dayPath(d)}/`)))).flat();
  return withJob(store, resources, async ({ engine, stager }) => {
    const staged = await stager.objects(objects, kind.header);
    const from = relationSql(staged.files.map((f) => f.file), kind.types, { ignoreErrors: true });
    const rows = await engine.all<T>(select(from));
    return { rows, files: staged.files.length, skipped: staged.skipped.map((s) => `${s.key}: ${s.reason}`) };
  });
}
