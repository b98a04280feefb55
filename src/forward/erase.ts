/**
 * A deletion reaches what tracklake wrote for its destinations (privacy/erase.ts calls this as one of its
 * `elsewhere` places):
 * - the backlog in the bucket (`destinations/<name>/backlog/…`): a subject's line is emptied, not removed,
 *   because a destination part-way through an object counts its lines;
 * - the dead letters (`deadletter/<name>/…`): a subject's line is removed, and an object left empty goes;
 * - each Postgres destination's tables: the subject's rows are deleted, by the same test as tracking rows
 *   (the account id, the device id, or a linked device's rows without an account id).
 *
 * What a webhook or another Segment-compatible API already received is the receiver's to delete: tracklake
 * cannot take it back (the README says so). Messages still in a collector's log are left out as they are
 * forwarded (forward/forwarder.ts), as they are when they ship.
 */
import type { Logger } from 'pino';
import pg from 'pg';
import type { Destination } from '../config/destinations.js';
import { parseForwardRow } from '../ingest/records.js';
import { type CopiesElsewhere, type ErasureSubjects, filterRecords } from '../privacy/erase.js';
import { messageSubject } from '../privacy/subjects.js';
import type { ObjectInfo, ObjectStore } from '../storage/store.js';
import { cutTableName, tableName, type PostgresDestination } from './postgres.js';

type IsSubject = (tenant: string, account: string, devices: readonly string[]) => boolean;

/** Whether a line (of a backlog or of dead letters) is about a subject; a line that cannot be read names nobody. */
function lineTest(isSubject: IsSubject, read: (line: Buffer) => { tenant: string; message: unknown }): (line: Buffer) => boolean {
  return (line) => {
    let m: { tenant: string; message: unknown };
    try {
      m = read(line);
    } catch {
      return false;
    }
    const r = messageSubject(m.tenant, m.message);
    return isSubject(r.tenant, r.user, r.devices);
  };
}

const backlogLine = (line: Buffer) => {
  const f = parseForwardRow(line);
  return { tenant: f.tenant, message: JSON.parse(f.json.toString('utf8')) as unknown };
};
const deadLetterLine = (line: Buffer) => JSON.parse(line.toString('utf8')) as { tenant: string; message: unknown };

export function forwardedCopies(destinations: readonly Destination[], store: ObjectStore, logger: Logger): CopiesElsewhere {
  return {
    async erase(subjects, isSubject) {
      const removed = { forwardBacklog: 0, deadLetters: 0, postgres: 0 };
      if (subjects.size === 0) return removed;
      // Every name in the bucket, configured or not: a destination removed from the configuration may have left some.
      const backlog = (await store.list('destinations/')).filter((o) => /^destinations\/[^/]+\/backlog\/[^/]+\.jsonl$/.test(o.key));
      for (const o of backlog) removed.forwardBacklog += await rewrite(store, o, lineTest(isSubject, backlogLine), 'blank');
      for (const o of (await store.list('deadletter/')).filter((x) => x.key.endsWith('.jsonl'))) removed.deadLetters += await rewrite(store, o, lineTest(isSubject, deadLetterLine), 'remove');
      for (const d of destinations) {
        if (d.type !== 'postgres') continue;
        const n = await deletePostgresRows(d, subjects);
        removed.postgres += n;
        if (n > 0) logger.info({ destination: d.name, rows: n }, 'erasure: rows deleted from the destination\'s tables');
      }
      return removed;
    },
  };
}

/** Attempts at an object that keeps changing under the erasure before the run fails (to be run again). */
const REWRITE_ATTEMPTS = 5;

/**
 * Filters one object, as listed. A destination deletes a backlog object once delivered, and a replay
 * rewrites or deletes dead letters: an object whose ETag is no longer the one it had when it was read is
 * read again (or left, when gone), since writing back the first read would bring back what they removed
 * (a delivered backlog delivered again, out of order). The ETag is looked at again only for an object with
 * something to erase. The object stores have no conditional write: what is left is the moment between that
 * look and the write.
 */
async function rewrite(store: ObjectStore, listed: ObjectInfo, drop: (line: Buffer) => boolean, mode: 'blank' | 'remove'): Promise<number> {
  const key = listed.key;
  let etag = listed.etag;
  for (let attempt = 0; attempt < REWRITE_ATTEMPTS; attempt++) {
    const body = await store.get(key);
    if (body === undefined) return 0;
    const { out, n } = await filterRecords(body, drop, mode, 'jsonl');
    if (n === 0) return 0;
    const now = (await store.list(key)).find((o) => o.key === key)?.etag;
    if (now === undefined) return 0;
    if (now !== etag) {
      etag = now; // changed since the listing or the read: read this version and look again
      continue;
    }
    if (mode === 'remove' && out.length === 0) await store.delete(key);
    else await store.put(key, out);
    return n;
  }
  throw new Error(`${key} changed at each of ${REWRITE_ATTEMPTS} attempts to erase from it; run the erasure again`);
}

/** Deletes the subjects' rows from each tenant's table of a Postgres destination; a table not made yet holds none. */
async function deletePostgresRows(d: PostgresDestination, subjects: ReadonlyMap<string, ErasureSubjects>): Promise<number> {
  const client = new pg.Client({ connectionString: d.url, connectionTimeoutMillis: d.timeoutMs });
  await client.connect();
  try {
    let n = 0;
    for (const [tenant, s] of subjects) {
      const users = [...s.users];
      const anons = [...s.anons];
      const linked = [...s.linked];
      if (users.length + anons.length + linked.length === 0) continue;
      const rows = `accountid = ANY($1::text[]) OR deviceid = ANY($2::text[]) OR (coalesce(accountid, '') = '' AND deviceid = ANY($3::text[]))`;
      const deletes = [{ sql: `DELETE FROM ${tableName(d, tenant)} WHERE ${rows}`, params: [users, anons, linked] as unknown[] }];
      // The name an earlier version wrote a long id's rows to, until the tenant's next message moves them to
      // its own table (postgres.ts, cutTableName): there only rows of its tenantid are its.
      const cut = cutTableName(d, tenant);
      if (cut !== undefined) deletes.push({ sql: `DELETE FROM ${cut} WHERE tenantid = $4 AND (${rows})`, params: [users, anons, linked, tenant] });
      for (const q of deletes) {
        try {
          n += (await client.query(q.sql, q.params)).rowCount ?? 0;
        } catch (e) {
          if ((e as { code?: string }).code !== '42P01') throw e; // undefined_table: nothing of this tenant was forwarded
        }
      }
    }
    return n;
  } finally {
    await client.end().catch(() => undefined);
  }
}
