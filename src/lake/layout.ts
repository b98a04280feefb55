/**
 * The bucket's layout, in one place: every kind of file tracklake writes, with its path pattern, its
 * columns (and their DuckDB types) and which columns name a person. The collector's shipper, the jobs, the
 * read cache, plan replay and erasure take paths and columns from here, and a test holds this table against
 * the README's "File formats" and fails when a kind is added without saying who its rows are about.
 *
 * A subject column names a person by one of the two ids a regulation can give (privacy/subjects.ts):
 * `USER_ID` (an account id) or `ANONYMOUS_ID` (a device or anonymous id). `erasure` says how a deletion
 * reaches the kind: its rows are filtered (`rows`), it is recomputed from the remaining tracking files by
 * its job (`derived`), or it names nobody (`none`: aggregates count products, not people).
 */
import { dayPath } from '../lib/dates.js';
import { IDENTITY_COLUMNS, TRACK_COLUMNS } from '../tracking/columns.js';

/** The two ids a privacy regulation can name a person by (privacy/subjects.ts). */
export const SUBJECT_TYPES = ['USER_ID', 'ANONYMOUS_ID'] as const;
export type SubjectType = (typeof SUBJECT_TYPES)[number];

export type ColumnTypes = Readonly<Record<string, string>>;

export interface FileKind {
  /** The path pattern as the README writes it. */
  pattern: string;
  /** `binary` for tracklake's own layouts (the index packs). */
  format: 'csv' | 'jsonl' | 'json' | 'binary';
  /** CSV columns in order with their DuckDB types (undefined for JSON files). */
  columns?: ColumnTypes;
  /** The columns (CSV) or fields (JSON lines) that hold a subject's id, by subject type. */
  subjects: Readonly<Partial<Record<SubjectType, readonly string[]>>>;
  erasure: 'rows' | 'derived' | 'none';
}

export const TRACK_TYPES = {
  time: 'BIGINT', tenantid: 'VARCHAR', correlationid: 'VARCHAR', deviceid: 'VARCHAR', accountid: 'VARCHAR', merchantid: 'VARCHAR',
  productid: 'VARCHAR', page: 'VARCHAR', event: 'VARCHAR', value: 'DOUBLE', ip: 'VARCHAR', long: 'DOUBLE', lat: 'DOUBLE',
  referer: 'VARCHAR', bot: 'BOOLEAN', ua: 'VARCHAR', url: 'VARCHAR', impressions: 'VARCHAR', devicetype: 'VARCHAR', source: 'VARCHAR',
} as const satisfies Record<(typeof TRACK_COLUMNS)[number], string>;
export const IDENTITY_TYPES = { time: 'BIGINT', tenantid: 'VARCHAR', deviceid: 'VARCHAR', accountid: 'VARCHAR', previousid: 'VARCHAR' } as const satisfies Record<(typeof IDENTITY_COLUMNS)[number], string>;
export const VIOLATION_TYPES = { time: 'BIGINT', tenantid: 'VARCHAR', messageid: 'VARCHAR', event: 'VARCHAR', type: 'VARCHAR', field: 'VARCHAR', message: 'VARCHAR', action: 'VARCHAR' } as const;
export const AGGREGATE_TYPES = { time: 'BIGINT', tenantid: 'VARCHAR', merchantid: 'VARCHAR', productid: 'VARCHAR', value: 'DOUBLE' } as const;
export const ALIAS_TYPES = { tenantid: 'VARCHAR', deviceid: 'VARCHAR', userid: 'VARCHAR', time: 'BIGINT' } as const;
export const SESSION_TYPES = {
  session_id: 'VARCHAR', tenantid: 'VARCHAR', userid: 'VARCHAR', deviceid: 'VARCHAR', start: 'BIGINT', end: 'BIGINT', duration: 'BIGINT',
  events: 'BIGINT', views: 'BIGINT', shares: 'BIGINT', chats: 'BIGINT', orders: 'BIGINT', page: 'VARCHAR', url: 'VARCHAR', referer: 'VARCHAR',
  source: 'VARCHAR', devicetype: 'VARCHAR', bounce: 'BOOLEAN',
} as const;
export const TRACK_FACT_TYPES = { ...TRACK_TYPES, userid: 'VARCHAR', session_id: 'VARCHAR', sequence: 'BIGINT' } as const;
export const USER_FACT_TYPES = { tenantid: 'VARCHAR', userid: 'VARCHAR', first_seen: 'BIGINT', last_seen: 'BIGINT', sessions: 'BIGINT', events: 'BIGINT', devices: 'BIGINT' } as const;
export const SESSION_STATE_TYPES = { day: 'VARCHAR', kind: 'VARCHAR', tenantid: 'VARCHAR', userid: 'VARCHAR', deviceid: 'VARCHAR', first_seen: 'BIGINT', last_seen: 'BIGINT', events: 'BIGINT', sessions: 'BIGINT' } as const;
export const USER_DEVICE_TYPES = { tenantid: 'VARCHAR', userid: 'VARCHAR', deviceid: 'VARCHAR', first_seen: 'BIGINT', last_seen: 'BIGINT', events: 'BIGINT', sessions: 'BIGINT' } as const;

const person = { USER_ID: ['accountid'], ANONYMOUS_ID: ['deviceid'] } as const;
/** Files of whole messages name people by the message's fields (privacy/subjects.ts, messageSubject). */
const messageFields = { USER_ID: ['message.userId'], ANONYMOUS_ID: ['message.anonymousId', 'message.context.device.id', 'message.previousId'] } as const;
/** The track analysis names its universal user `userid`: an account id, or a device id for the never-linked. */
const analysed = { USER_ID: ['userid'], ANONYMOUS_ID: ['deviceid', 'userid'] } as const;

/** Every kind of file in the bucket. Keys of this table are the kinds' names in reports (`rows removed per kind`). */
export const LAKE = {
  tracks: { pattern: 'tracks/<yyyy>/<mm>/<dd>/<node>-<sequence>.csv', format: 'csv', columns: TRACK_TYPES, subjects: person, erasure: 'rows' },
  identities: { pattern: 'identities/<yyyy>/<mm>/<dd>/<node>-<sequence>.csv', format: 'csv', columns: IDENTITY_TYPES, subjects: { USER_ID: ['accountid'], ANONYMOUS_ID: ['deviceid', 'previousid'] }, erasure: 'rows' },
  // A violation row names its message, not its sender: the rows of a subject's blocked messages are found by
  // their quarantine lines' messageId (privacy/erase.ts).
  violations: { pattern: 'violations/<yyyy>/<mm>/<dd>/<node>-<sequence>.csv', format: 'csv', columns: VIOLATION_TYPES, subjects: {}, erasure: 'rows' },
  quarantine: { pattern: 'quarantine/<yyyy>/<mm>/<dd>/<node>-<sequence>.jsonl', format: 'jsonl', subjects: messageFields, erasure: 'rows' },
  schemas: { pattern: 'schemas/<yyyy>/<mm>/<dd>/<tenant>/<node>.json', format: 'json', subjects: {}, erasure: 'none' },
  // Counts only: messages acknowledged per tenant and minute, the last half hour (lake/live.ts).
  live: { pattern: 'live/<node>.json', format: 'json', subjects: {}, erasure: 'none' },
  // Which collector runs as a node id: its log's id, host and process, refreshed while it runs (ingest/node-claim.ts).
  nodes: { pattern: 'nodes/<node>.json', format: 'json', subjects: {}, erasure: 'none' },
  aggregatesDaily: { pattern: 'aggregates/daily/<yyyy>/<mm>/<dd>/<metric>.csv', format: 'csv', columns: AGGREGATE_TYPES, subjects: {}, erasure: 'derived' },
  aggregatesMonthly: { pattern: 'aggregates/monthly/<yyyy>/<mm>/<metric>.csv', format: 'csv', columns: AGGREGATE_TYPES, subjects: {}, erasure: 'derived' },
  aggregatesYearly: { pattern: 'aggregates/yearly/<yyyy>/<metric>.csv', format: 'csv', columns: AGGREGATE_TYPES, subjects: {}, erasure: 'derived' },
  aggregatesOverall: { pattern: 'aggregates/overall/<metric>.csv', format: 'csv', columns: AGGREGATE_TYPES, subjects: {}, erasure: 'derived' },
  aliasMap: { pattern: 'aliases/alias_map.csv', format: 'csv', columns: ALIAS_TYPES, subjects: analysed, erasure: 'rows' },
  sessions: { pattern: 'sessions/<yyyy>/<mm>/<dd>/sessions.csv', format: 'csv', columns: SESSION_TYPES, subjects: analysed, erasure: 'derived' },
  trackFacts: { pattern: 'track_facts/<yyyy>/<mm>/<dd>/track_facts.csv', format: 'csv', columns: TRACK_FACT_TYPES, subjects: { USER_ID: ['accountid', 'userid'], ANONYMOUS_ID: ['deviceid', 'userid'] }, erasure: 'derived' },
  userFacts: { pattern: 'users/user_facts.csv', format: 'csv', columns: USER_FACT_TYPES, subjects: { USER_ID: ['userid'], ANONYMOUS_ID: ['userid'] }, erasure: 'derived' },
  sessionState: { pattern: 'sessions/_state/<yyyy>/<mm>/<dd>/state.csv', format: 'csv', columns: SESSION_STATE_TYPES, subjects: analysed, erasure: 'derived' },
  userDevices: { pattern: 'users/_state/user_devices.csv', format: 'csv', columns: USER_DEVICE_TYPES, subjects: analysed, erasure: 'derived' },
  // Destinations' copies (forward/): a backlog of forwarded lines (`<tenant>\t<blocked>\t<receivedAt>\t<name>\t<message>`),
  // and dead letters (a JSON line each, the message under `message`). An erasure empties a backlog line (a
  // destination's cursor counts lines) and removes a dead letter.
  forwardBacklog: { pattern: 'destinations/<name>/backlog/<node>-<segment>.jsonl', format: 'jsonl', subjects: messageFields, erasure: 'rows' },
  deadLetters: { pattern: 'deadletter/<name>/<yyyy>/<mm>/<dd>/<id>.jsonl', format: 'jsonl', subjects: messageFields, erasure: 'rows' },
  // Privacy's own files. A regulation keeps its subjects as keyed hashes, and its plain ids only until the
  // deletion that needed them is done; an index pack holds fingerprints and is written again with its files.
  regulations: { pattern: 'privacy/regulations/<tenant>/<id>.json', format: 'json', subjects: {}, erasure: 'none' },
  indexPacks: { pattern: 'privacy/packs/<kind>/<yyyy>/<mm>.pack', format: 'binary', subjects: {}, erasure: 'derived' },
} as const satisfies Record<string, FileKind>;

export type KindName = keyof typeof LAKE;

/** The CSV header line of a kind (no newline). */
export const headerOf = (kind: { columns: ColumnTypes }) => Object.keys(kind.columns).join(',');

/** The keys of each kind: one builder per pattern above. */
export const keys = {
  /** The per-node objects a log segment ships into, by folder: `<prefix>/<yyyy>/<mm>/<dd>/<name>.<ext>`. */
  shipped: (prefix: 'tracks' | 'identities' | 'violations' | 'quarantine', day: string, name: string, ext: string) => `${prefix}/${dayPath(day)}/${name}.${ext}`,
  tracksDay: (day: string) => `tracks/${dayPath(day)}/`,
  identitiesDay: (day: string) => `identities/${dayPath(day)}/`,
  violationsDay: (day: string) => `violations/${dayPath(day)}/`,
  quarantineDay: (day: string) => `quarantine/${dayPath(day)}/`,
  live: (node: string) => `live/${node}.json`,
  node: (node: string) => `nodes/${node}.json`,
  schemas: (day: string, tenant: string, node: string) => `schemas/${dayPath(day)}/${tenant}/${node}.json`,
  schemasDay: (day: string, tenant?: string) => `schemas/${dayPath(day)}/${tenant ? `${tenant}/` : ''}`,
  daily: (day: string, metric: string) => `aggregates/daily/${dayPath(day)}/${metric}.csv`,
  dailyDay: (day: string) => `aggregates/daily/${dayPath(day)}/`,
  aggregateManifest: (day: string) => `aggregates/_state/daily/${dayPath(day)}/manifest.json`,
  monthly: (month: string, metric: string) => `aggregates/monthly/${month.replace('-', '/')}/${metric}.csv`,
  yearly: (year: string, metric: string) => `aggregates/yearly/${year}/${metric}.csv`,
  overall: (metric: string) => `aggregates/overall/${metric}.csv`,
  aliasMap: 'aliases/alias_map.csv',
  sessions: (day: string) => `sessions/${dayPath(day)}/sessions.csv`,
  trackFacts: (day: string) => `track_facts/${dayPath(day)}/track_facts.csv`,
  sessionState: (day: string) => `sessions/_state/${dayPath(day)}/state.csv`,
  sessionManifest: (day: string) => `sessions/_state/${dayPath(day)}/manifest.json`,
  userFacts: 'users/user_facts.csv',
  userDevices: 'users/_state/user_devices.csv',
  userInputs: 'users/_state/_inputs.json',
  /** Privacy: regulations per tenant, the suppression list per tenant, the secret, the per-file subject index. */
  regulation: (tenant: string, id: string) => `privacy/regulations/${tenant}/${id}.json`,
  regulations: (tenant?: string) => `privacy/regulations/${tenant ? `${tenant}/` : ''}`,
  suppressions: (tenant: string) => `privacy/suppressions/${tenant}.json`,
  suppressionsAll: 'privacy/suppressions/',
  privacySecret: 'privacy/secret',

} as const;
