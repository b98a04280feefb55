/**
 * The Postgres destination: each message as rows of `"<schema>"."tracks_<tenant>"`: the 20 tracking-file
 * columns (the tracking rows the collector logged for it, or the message mapped as the collector maps it),
 * then message_id, type, properties and context as jsonb. Exactly once by (message_id, row), the primary
 * key: a batch is one transaction, a plain COPY (pg-copy-streams); a batch sent again after a crash meets
 * its own rows (a unique violation) and goes through a temporary table and ON CONFLICT DO NOTHING instead,
 * so it adds only what is missing. Tables are made on first use and migrated by version
 * (`tracklake_migrations`), under an advisory lock, so several collectors can share one database.
 *
 * Failures as data: a connection lost, refused or timed out, the server restarting, a deadlock: retried.
 * A row Postgres refuses (a data or constraint error, SQLSTATE class 22 or 23): refused for good, so the
 * batch is split until that message stands alone and goes to the dead letters.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Destination } from '../config/destinations.js';
import { TRACK_TYPES } from '../lake/layout.js';
import { validateMessage } from '../segment/message.js';
import { UaClassifier } from '../tracking/enrich.js';
import { buildEventMap } from '../tracking/events.js';
import { mapMessage } from '../tracking/map.js';
import { TRACK_COLUMNS, type TrackRow } from '../tracking/columns.js';
import { isJsonNull, isJsonString, jsonMembers, type Span } from '../lib/json-members.js';
import type { Outcome, Outgoing, Sender } from './sender.js';

export type PostgresDestination = Extract<Destination, { type: 'postgres' }>;

const PG_TYPES: Record<string, string> = { VARCHAR: 'text', BIGINT: 'bigint', DOUBLE: 'double precision', BOOLEAN: 'boolean' };
/** The tracking file's columns with their Postgres types (lake/layout.ts is their one home). */
const TRACK_DDL = TRACK_COLUMNS.map((c) => `"${c}" ${PG_TYPES[(TRACK_TYPES as Record<string, string>)[c]!]!}`);
const COLUMNS = [...TRACK_COLUMNS.map((c) => `"${c}"`), 'message_id', '"row"', 'type', 'properties', 'context'];

/** Each version's statements, in order; a table is brought to the last one. `{{table}}` is the quoted name. */
export const MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `CREATE TABLE IF NOT EXISTS {{table}} (
      ${TRACK_DDL.join(',\n      ')},
      message_id text NOT NULL,
      "row" integer NOT NULL,
      type text NOT NULL,
      properties jsonb,
      context jsonb,
      PRIMARY KEY (message_id, "row")
    )`,
  },
];

const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const SPECIAL = /[\\\n\r\t]/;

/**
 * A field of COPY's text format: `\N` for NULL, and only backslash, tab and line ends escaped (JSON has
 * few of those, where CSV would double its every quote: a third less time encoding a row). An empty value
 * is NULL, as in the tracking files, where the two are one.
 */
function field(v: unknown): string {
  if (v === null || v === undefined || v === '') return '\\N';
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return SPECIAL.test(s) ? s.replace(/[\\\n\r\t]/g, (c) => ESCAPES[c]!) : s;
}

/**
 * A COPY body in the text format, written as bytes: a logged message's tracking values are copied from the
 * bytes the log holds, and no string is built for a row or the body, which would be decoded, joined and
 * encoded again (3.9 µs a message instead of 6–7 for bench:ingest's messages, and less garbage).
 */
class CopyWriter {
  private buf: Buffer;
  at = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(Math.max(size, 256));
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  byte(c: number): void {
    this.room(1);
    this.buf[this.at++] = c;
  }

  text(s: string): void {
    this.room(3 * s.length);
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  /** Bytes [start, end) of src, with COPY's escapes for backslash, line ends and tab when `escape`. */
  bytes(src: Buffer, start: number, end: number, escape: boolean): void {
    if (!escape && end - start > 64) {
      this.room(end - start);
      this.at += src.copy(this.buf, this.at, start, end);
      return;
    }
    this.room(2 * (end - start));
    const b = this.buf;
    let at = this.at;
    // A value of a few bytes is copied here: Buffer#copy's checks cost more than such a copy.
    for (let i = start; i < end; i++) {
      const c = src[i]!;
      const e = !escape ? 0 : c === 0x5c ? 0x5c : c === 0x0a ? 0x6e : c === 0x0d ? 0x72 : c === 0x09 ? 0x74 : 0;
      if (e !== 0) {
        b[at++] = 0x5c;
        b[at++] = e;
      } else b[at++] = c;
    }
    this.at = at;
  }

  done(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

const NULL_FIELD = Buffer.from('\\N');

/**
 * A tracking file's CSV line (tracking/csv.ts: RFC 4180 quoting, an empty field for a missing value) as
 * COPY fields, tab-separated; false (and `out` as it was) when it does not hold the tracking columns.
 */
function copyCsv(out: CopyWriter, line: Buffer): boolean {
  const mark = out.at;
  // COPY's escapes are rare in a tracking row: looked for once per line, not per value.
  const escape = line.includes(0x5c) || line.includes(0x09) || line.includes(0x0a) || line.includes(0x0d);
  const fail = () => ((out.at = mark), false);
  let at = 0;
  let fields = 0;
  for (;;) {
    if (fields++ > 0) out.byte(0x09);
    const from = out.at;
    if (line[at] === 0x22) {
      for (let start = at + 1; ; ) {
        const quote = line.indexOf(0x22, start);
        if (quote < 0) return fail();
        out.bytes(line, start, quote, escape);
        if (line[quote + 1] !== 0x22) {
          at = quote + 1;
          break;
        }
        out.byte(0x22); // a doubled quote
        start = quote + 2;
      }
    } else {
      const comma = line.indexOf(0x2c, at);
      const end = comma < 0 ? line.length : comma;
      out.bytes(line, at, end, escape);
      at = end;
    }
    if (out.at === from) out.bytes(NULL_FIELD, 0, 2, false); // empty is NULL, as in the tracking files
    if (at === line.length) break;
    if (line[at] !== 0x2c) return fail(); // text after a closing quote
    at++;
  }
  return fields === TRACK_COLUMNS.length || fail();
}

/** A CSV tracking row as COPY fields (undefined when not the tracking columns): what a logged row becomes. */
export function copyFieldsOfCsv(line: Buffer): string | undefined {
  const out = new CopyWriter(2 * line.length);
  return copyCsv(out, line) ? out.done().toString('utf8') : undefined;
}

const MEMBERS = ['type', 'messageId', 'properties', 'traits', 'context'] as const;
const EMPTY_OBJECT = Buffer.from('{}');

/** A member's JSON text as a COPY field: in compact JSON only a backslash needs COPY's escape. */
function copyJson(out: CopyWriter, json: Buffer, [start, end]: Span): void {
  const slash = json.indexOf(0x5c, start);
  out.bytes(json, start, end, slash >= 0 && slash < end);
}

/** A member that is a JSON string as a COPY field: its bytes between the quotes, unless it holds an escape. */
function copyJsonString(out: CopyWriter, json: Buffer, [start, end]: Span): void {
  const slash = json.indexOf(0x5c, start);
  if (slash >= 0 && slash < end) out.text(field(JSON.parse(json.toString('utf8', start, end)) as string));
  else if (end - start === 2) out.bytes(NULL_FIELD, 0, 2, false); // empty is NULL, as field() has it
  else out.bytes(json, start + 1, end - 1, false);
}

/**
 * A logged message's rows from its tracking rows, with the message's own members as JSON text for the
 * jsonb columns (lib/json-members.ts): nothing is parsed, decoded or written out again. False (and `out` as
 * it was) when the message or a row is not as the collector logs them; the caller maps the message instead.
 */
function copyLogged(out: CopyWriter, json: Buffer, tracks: readonly Buffer[]): boolean {
  const m = jsonMembers(json, MEMBERS);
  if (m === undefined || !isJsonString(json, m.type) || !isJsonString(json, m.messageId)) return false;
  const present = (s: Span | undefined) => (s === undefined || isJsonNull(json, s) ? undefined : s);
  const data = present(m.properties) ?? present(m.traits);
  const context = m.context !== undefined && json[m.context[0]] === 0x7b ? m.context : undefined;
  const mark = out.at;
  for (let i = 0; i < tracks.length; i++) {
    if (!copyCsv(out, tracks[i]!)) return ((out.at = mark), false);
    out.byte(0x09);
    copyJsonString(out, json, m.messageId);
    out.text(`\t${i}\t`);
    copyJsonString(out, json, m.type);
    out.byte(0x09);
    if (data) copyJson(out, json, data);
    else out.bytes(NULL_FIELD, 0, 2, false);
    out.byte(0x09);
    if (context) copyJson(out, json, context);
    else out.bytes(EMPTY_OBJECT, 0, 2, false);
    out.byte(0x0a);
  }
  return true;
}

/**
 * Messages as the body of `COPY … FROM STDIN` (text format): a message with the tracking rows the collector
 * logged for it takes them (copyLogged); any other (a backlog in the bucket, a dead letter, a call that makes
 * no tracking row) is mapped again.
 */
export function encodeMessages(mapper: RowMapper, tenant: string, messages: readonly Outgoing[]): Buffer {
  let size = 0;
  for (const m of messages) size += 2 * m.json.length + 256;
  const out = new CopyWriter(size);
  for (const m of messages) {
    if (m.tracks && m.tracks.length > 0 && copyLogged(out, m.json, m.tracks)) continue;
    for (const row of mapper.rows(tenant, m.json.toString('utf8'))) {
      out.text(row);
      out.byte(0x0a);
    }
  }
  return out.done();
}

/** A tenant's messages as COPY's body, in chunks encoded as they are asked for. */
function* encodedChunks(mapper: RowMapper, tenant: string, messages: readonly Outgoing[]): Generator<Buffer> {
  const CHUNK = 64;
  for (let i = 0; i < messages.length; i += CHUNK) yield encodeMessages(mapper, tenant, messages.slice(i, i + CHUNK));
}

/** The columns a COPY of encoded rows names, in their order. */
export const COPY_COLUMNS = COLUMNS.join(', ');

export interface RowMapper {
  /**
   * A message's rows as COPY lines, the message mapped as the collector maps it (a backlog in the bucket, a
   * dead letter, a call that makes no tracking row: 14 µs of a sender thread's CPU a message). A message read
   * from the log takes the tracking rows logged for it instead (encodeMessages).
   */
  rows(tenant: string, json: string): string[];
}

/**
 * A forwarded message's rows: one per tracking row it makes (the collector's own mapping), or one for calls
 * that make none (identify, group, alias) with the tracking columns empty but its time, tenant and who it is
 * about (accountid: userId; deviceid: context.device.id or anonymousId), so an erasure finds it too.
 */
export function rowMapper(events: Readonly<Record<string, string>>): RowMapper {
  const eventMap = buildEventMap(events);
  const uaClassifier = new UaClassifier();
  return {
    rows(tenant, json) {
      const raw = JSON.parse(json) as Record<string, any>;
      const context = raw.context && typeof raw.context === 'object' ? raw.context : {};
      const rest = [String(raw.type), raw.properties ?? raw.traits ?? null, context].map(field).join('\t');
      const tail = (i: number) => `${field(String(raw.messageId))}\t${i}\t${rest}`;
      const receivedAt = Date.parse(String(raw.receivedAt)) || Date.now();
      // Its size was checked at the door; told the message's own length, validation does not measure it again.
      const v = validateMessage(raw, { bodyBytes: Buffer.byteLength(json) });
      let tracks: TrackRow[] = [];
      if (v.ok) {
        const mapped = mapMessage(v.value, { tenant, receivedAt, clientIp: typeof context.ip === 'string' ? context.ip : null, eventMap, uaClassifier });
        if (mapped.ok) tracks = mapped.value.tracks;
      }
      if (tracks.length === 0) {
        const id = (v: unknown) => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null);
        const own: Partial<Record<string, unknown>> = { tenantid: tenant, time: receivedAt, accountid: id(raw.userId), deviceid: id(context.device?.id) ?? id(raw.anonymousId) };
        return [`${TRACK_COLUMNS.map((c) => field(own[c])).join('\t')}\t${tail(0)}`];
      }
      return tracks.map((t, i) => `${TRACK_COLUMNS.map((c) => field(t[c])).join('\t')}\t${tail(i)}`);
    },
  };
}

/** SQLSTATE classes of a row Postgres will never take: data exceptions, integrity constraint violations. */
const refused = (code: unknown) => typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));

/** Postgres keeps the first 63 bytes of a name and drops the rest, with only a notice (NAMEDATALEN). */
const MAX_NAME = 63;
const plainName = (tenant: string) => `tracks_${tenant}`;

/**
 * A tenant's table's own name: `tracks_<tenant>`, or, for an id too long for a Postgres name (a tenant id
 * may have 128 characters), its first characters and a hash of the whole id. Cut short by Postgres
 * instead, two ids alike in their first 56 characters would share one table: one tenant's rows in
 * another's, and an erasure of one deleting from both.
 */
export function tenantTable(tenant: string): string {
  const name = plainName(tenant);
  if (name.length <= MAX_NAME) return name; // tenant ids are ASCII: a character is a byte
  const hash = createHash('sha256').update(tenant).digest('hex').slice(0, 16);
  return `${name.slice(0, MAX_NAME - hash.length - 1)}_${hash}`;
}

/** A tenant's table, quoted, in the destination's schema. */
export const tableName = (d: Pick<PostgresDestination, 'schema'>, tenant: string) => `${ident(d.schema)}.${ident(tenantTable(tenant))}`;

/**
 * The table a long tenant id's rows went to before tenantTable (tracklake before 2026-12-06): the name
 * Postgres cut `tracks_<tenant>` to, which other long ids may share (so only rows whose tenantid is this
 * tenant's are its). Undefined for an id whose name was never cut.
 */
export function cutTableName(d: Pick<PostgresDestination, 'schema'>, tenant: string): string | undefined {
  const name = plainName(tenant);
  return name.length > MAX_NAME ? `${ident(d.schema)}.${ident(name.slice(0, MAX_NAME))}` : undefined;
}

export function postgresSender(d: PostgresDestination, events: Readonly<Record<string, string>>): Sender {
  const pool = new pg.Pool({ connectionString: d.url, max: 1, connectionTimeoutMillis: d.timeoutMs, query_timeout: d.timeoutMs, application_name: `tracklake ${d.name}` });
  // An idle connection the server dropped (a restart) is an error on the pool, not a crash.
  pool.on('error', () => undefined);
  const mapper = rowMapper(events);
  const ready = new Set<string>();
  const tableOf = (tenant: string) => tableName(d, tenant);

  /** Makes the tenant's table and brings it to the last version (once per process, under a lock). */
  async function ensure(client: pg.PoolClient, tenant: string): Promise<string> {
    const table = tableOf(tenant);
    if (ready.has(table)) return table;
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [table]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(d.schema)}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${ident(d.schema)}.tracklake_migrations (tbl text NOT NULL, version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tbl, version))`);
      // A table dropped since its migrations were recorded (an operator starting it over) is made again:
      // its record goes with it, or every batch would fail on a table that never comes back.
      if ((await client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [table])).rows[0]!.present === false) {
        await client.query(`DELETE FROM ${ident(d.schema)}.tracklake_migrations WHERE tbl = $1`, [table]);
      }
      const done = new Set((await client.query<{ version: number }>(`SELECT version FROM ${ident(d.schema)}.tracklake_migrations WHERE tbl = $1`, [table])).rows.map((r) => r.version));
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await client.query(m.sql.replaceAll('{{table}}', table));
        await client.query(`INSERT INTO ${ident(d.schema)}.tracklake_migrations (tbl, version) VALUES ($1, $2)`, [table, m.version]);
      }
      // The tenant's rows an earlier version wrote under the cut name move to its own table, in this
      // transaction: nothing is in both, nothing is lost, and other tenants' rows there stay.
      const cut = cutTableName(d, tenant);
      if (cut !== undefined && (await client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [cut])).rows[0]!.present) {
        await client.query(`INSERT INTO ${table} (${COPY_COLUMNS}) SELECT ${COPY_COLUMNS} FROM ${cut} WHERE tenantid = $1 ON CONFLICT (message_id, "row") DO NOTHING`, [tenant]);
        await client.query(`DELETE FROM ${cut} WHERE tenantid = $1`, [tenant]);
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
    ready.add(table);
    return table;
  }

  return {
    async send(messages) {
      const byTenant = new Map<string, Outgoing[]>();
      for (const m of messages) {
        const list = byTenant.get(m.tenant) ?? [];
        list.push(m);
        byTenant.set(m.tenant, list);
      }
      let client: pg.PoolClient | undefined;
      try {
        client = await pool.connect();
        const batches: Array<{ table: string; tenant: string; messages: Outgoing[] }> = [];
        for (const [tenant, list] of byTenant) batches.push({ table: await ensure(client, tenant), tenant, messages: list });
        // Rows are mapped and encoded while they stream: Postgres takes the first chunk while the next is
        // made, so the mapping's time overlaps the server's instead of adding to it (0.51 -> 0.9 of a plain
        // COPY's rows per second in bench:forward).
        const copy = (into: string, b: (typeof batches)[number]) => pipeline(Readable.from(encodedChunks(mapper, b.tenant, b.messages)), client!.query(copyFrom(`COPY ${into} (${COPY_COLUMNS}) FROM STDIN`)));
        // As a rule nothing of a batch is there yet: one plain COPY into the table. A batch sent again (after
        // a crash, or a retry whose COMMIT was lost) meets its own rows: then through a temporary table and
        // ON CONFLICT DO NOTHING, which adds only what is missing.
        await client.query('BEGIN');
        try {
          for (const b of batches) await copy(b.table, b);
        } catch (e) {
          if ((e as { code?: string }).code !== '23505') throw e;
          await client.query('ROLLBACK');
          await client.query('BEGIN');
          for (const b of batches) {
            await client.query(`CREATE TEMP TABLE IF NOT EXISTS tracklake_staging (LIKE ${b.table} INCLUDING DEFAULTS) ON COMMIT DROP`);
            await copy('tracklake_staging', b);
            await client.query(`INSERT INTO ${b.table} (${COLUMNS.join(', ')}) SELECT ${COLUMNS.join(', ')} FROM tracklake_staging ON CONFLICT (message_id, "row") DO NOTHING`);
            await client.query('DROP TABLE tracklake_staging');
          }
        }
        await client.query('COMMIT');
        return { ok: true };
      } catch (e) {
        const err = e as Error & { code?: string };
        await client?.query('ROLLBACK').catch(() => undefined);
        // A table dropped or changed under us is made again at the next attempt.
        if (typeof err.code === 'string' && err.code.startsWith('42')) ready.clear();
        const outcome: Outcome = { ok: false, retry: !refused(err.code), error: `postgres ${d.name}: ${err.code ? `${err.code} ` : ''}${err.message}` };
        client?.release(true);
        client = undefined;
        return outcome;
      } finally {
        client?.release();
      }
    },
    close: () => pool.end(),
  };
}
