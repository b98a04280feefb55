/**
 * Days bigger than the memory the jobs may use: both jobs complete under a small DuckDB memory limit,
 * spilling to the scratch folder, with outputs byte for byte those of an unconstrained run; a full scratch
 * folder is a clear error naming it.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { runAggregates } from '../src/jobs/aggregates/job.js';
import { metricSet } from '../src/jobs/aggregates/metrics.js';
import { withJob } from '../src/jobs/context.js';
import { runSessions } from '../src/jobs/sessions/job.js';
import { ScratchFullError } from '../src/lib/errors.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { TRACK_COLUMNS } from '../src/tracking/columns.js';
import { silent, tempDir } from './helpers.js';

const DAY = '2026-04-07';
const ROWS = 400_000;
const LIMIT = 192 * 2 ** 20;

/**
 * One day of tracking rows with ~200 000 distinct products and ~60 000 devices, written by DuckDB: 34 MB of
 * CSV. Measured with the late copy (two files): both jobs peak at 579 MiB resident unconstrained, 484 MiB
 * under the 192 MiB limit (the rest is Node and the track facts' read-ahead).
 */
async function writeBigDay(root: string): Promise<void> {
  const dir = path.join(root, 'tracks/2026/04/07');
  await fs.mkdir(dir, { recursive: true });
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const start = Date.parse(`${DAY}T00:00:00Z`);
  const cols: Record<string, string> = {
    time: `${start} + (hash(i, 1) % 86400000)::BIGINT`, tenantid: "'t1'", correlationid: 'NULL', deviceid: "'d' || (hash(i, 2) % 60000)::BIGINT",
    accountid: "CASE WHEN i % 7 = 0 THEN 'u' || (hash(i, 2) % 60000)::BIGINT END", merchantid: "CASE WHEN i % 50 = 0 THEN NULL ELSE 'm' || (hash(i, 3) % 2000)::BIGINT END",
    productid: "'p' || (hash(i, 4) % 200000)::BIGINT", page: "'/p'", event: "['view', 'view', 'share', 'chat', 'load'][1 + (hash(i, 5) % 5)::BIGINT]", value: 'NULL',
    ip: 'NULL', long: 'NULL', lat: 'NULL', referer: 'NULL', bot: 'false', ua: "'Mozilla/5.0'", url: 'NULL', impressions: 'NULL', devicetype: "'DESKTOP'", source: "'DIRECT'",
  };
  await c.run(`COPY (SELECT ${TRACK_COLUMNS.map((k) => `${cols[k]} AS "${k}"`).join(', ')} FROM range(${ROWS}) t(i)) TO '${path.join(dir, 'n1-000000000001.csv')}' (FORMAT csv, HEADER true)`);
  c.closeSync();
  db.closeSync();
}

async function outputs(store: ObjectStore): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const o of await store.list('')) if (!o.key.startsWith('tracks/') && !o.key.endsWith('.json')) out[o.key] = (await store.get(o.key))!.toString('utf8');
  return out;
}

describe('jobs under a memory limit', () => {
  it(`aggregate and analyse a day of ${ROWS} rows within ${LIMIT / 2 ** 20} MiB, as without a limit`, async () => {
    const roots = [path.join(tempDir('mem-small'), 'data'), path.join(tempDir('mem-free'), 'data')];
    for (const root of roots) await writeBigDay(root);
    const [small, free] = roots.map((r) => new LocalStore(r)) as [LocalStore, LocalStore];
    const scratch = tempDir('mem-scratch');
    const run = async () => {
      for (const [store, limit] of [[small, LIMIT], [free, undefined]] as const) {
        await runAggregates([DAY], { store, metrics: metricSet(), logger: silent, memoryLimitBytes: limit, tmpDir: scratch, threads: 2 });
        await runSessions([DAY], { store, logger: silent, inactivityMinutes: 30, includeBots: false, lookbackDays: 35, memoryLimitBytes: limit, tmpDir: scratch, threads: 2 });
      }
    };
    await run();
    // Late data: the day again, its month, year and overall merged incrementally (three files read at once).
    for (const root of roots) await fs.copyFile(path.join(root, 'tracks/2026/04/07/n1-000000000001.csv'), path.join(root, 'tracks/2026/04/07/n1-000000000002.csv'));
    await run();
    const [a, b] = [await outputs(small), await outputs(free)];
    assert.ok(a['aggregates/overall/view.csv']!.split('\n').length > 100_000, 'many keys');
    assert.ok(a['aggregates/overall/view.csv']!.includes(',2\n'), 'the late copy counted');
    assert.ok(a['sessions/2026/04/07/sessions.csv']!.length > 0);
    assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
    for (const k of Object.keys(b)) assert.ok(a[k] === b[k], `${k} differs`);
    assert.deepEqual(await fs.readdir(scratch), [], 'the spill folders are gone');
  });

  it('ends a run that fills its scratch folder with an error naming the folder', async () => {
    const scratch = tempDir('full');
    // /dev/full answers every write with ENOSPC: DuckDB's own writer meets a full disk.
    const err = await withJob(new LocalStore(tempDir('x')), { tmpDir: scratch }, ({ engine }) => engine.copyToCsv('SELECT 1 AS x FROM range(100000)', '/dev/full')).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ScratchFullError, String(err));
    assert.match(err.message, new RegExp(`no space left in the scratch folder ${scratch.replaceAll('/', '\\/')}`));
  });
});
