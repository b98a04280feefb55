/**
 * Configuration, parsed once. Sources, strongest first: command-line flags, TRACKLAKE_* environment
 * variables, the JSON config file (--config), the embedded defaults below. The result is validated with one
 * schema and frozen; nothing else in tracklake reads process.env. A bad setting stops start-up with its name.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { destinationSetting, destinationsSchema } from './destinations.js';
import { tenantId } from './ids.js';
import { ConfigError } from '../lib/errors.js';
import { IP_MODES, type Retention } from '../privacy/reduce.js';

const MiB = 1024 * 1024;

const metricSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'a metric name is lower-case letters, digits and _'),
  events: z.array(z.string().min(1)).min(1),
  measure: z.enum(['count', 'sum']),
});

const geoPrecision = z.coerce.number().int().min(0).max(8);
const retention = { ipMode: z.enum(IP_MODES, { error: 'full, truncate, hash or drop' }), geoPrecision };

export const configSchema = z.strictObject({
  /** Address the collector listens on. Default 127.0.0.1: nothing outside the machine until you say so. */
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Where files go: a folder (default ./data) or s3://bucket/prefix. */
  storage: z.string().min(1).default('./data'),
  /** S3 settings (credentials come from the standard AWS environment, read by the AWS SDK itself). */
  s3Region: z.string().min(1).optional(),
  s3Endpoint: z.url().optional(),
  s3ForcePathStyle: z.boolean().default(false),
  /**
   * The node's state folder: everything it keeps on its own disk (its log unless walDir says otherwise, the
   * API secret, the read cache). One long-running process per folder.
   */
  stateDir: z.string().min(1).default('./.tracklake'),
  /** The local write-ahead log; stays on local disk even when storage is S3. Unset: `<stateDir>/wal`. */
  walDir: z.string().min(1).optional(),
  /** Longest time an accepted event waits in the log before it is shipped to storage. */
  flushIntervalMs: z.coerce.number().int().min(10).max(3_600_000).default(60_000),
  /**
   * A log segment is shipped early once it reaches this size. At most 1 GiB: shipping and a destination's
   * hand-over read a sealed segment whole, and Node reads no file over 2 GiB at once (a segment overshoots
   * this size by the requests in flight when it is reached).
   */
  maxSegmentBytes: z.coerce.number().int().min(1024).max(1024 * MiB, 'at most 1 GiB (1073741824): a sealed segment is read whole when it ships').default(64 * MiB),
  /** Over this many unshipped bytes the collector answers 503 + Retry-After instead of buffering more. */
  maxBufferBytes: z.coerce.number().int().min(1024).default(1024 * MiB),
  /** write key → tenant id. Empty means the embedded default: key "dev" for tenant "demo". */
  sources: z.record(z.string().min(1).max(256), tenantId).default({}),
  /** Allowed CORS origins; ["*"] allows any. */
  corsOrigins: z.array(z.string().min(1)).min(1).default(['*']),
  /** Take the client address from X-Forwarded-For (only behind a proxy you control). */
  trustProxy: z.boolean().default(false),
  /**
   * The collector's address as browsers and apps reach it (https://collect.example.com, a path allowed):
   * what the SDK settings it serves tell clients to send to. Unset: taken from each request's Host (and
   * X-Forwarded-Proto/-Host with trustProxy).
   */
  publicUrl: z
    .url({ protocol: /^https?$/, error: 'an http(s) URL such as https://collect.example.com' })
    .refine((u) => {
      // Refinements run even after the URL check failed: parse defensively.
      const x = URL.canParse(u) ? new URL(u) : undefined;
      return x !== undefined && !x.search && !x.hash && !x.username && !x.password;
    }, 'no query, fragment or credentials')
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  /** This collector's name in object keys; generated once and kept in the log folder when unset. */
  nodeId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a node id is 1-64 letters, digits, "_" or "-"').optional(),
  /**
   * tenant → its tracking plan file (YAML): {"acme": "plans/acme.yaml"}. One plan may serve several
   * tenants; a tenant without one is unchecked. In a config file a relative path is relative to that file.
   */
  plans: z.record(tenantId, z.string().min(1)).default({}),
  /** Extra or overriding event-name mappings: {"item viewed": "view"}. */
  events: z.record(z.string().min(1), z.string().min(1)).default({}),
  /**
   * The read side's token signing secret (HS256, at least 32 bytes). Unset: one is made once and kept in
   * the state folder (`<stateDir>/api-secret`).
   */
  apiSecret: z.string().min(32, 'at least 32 characters').optional(),
  /** The read side (query API and dashboard) listens here, never on the collector's port. */
  apiHost: z.string().min(1).default('127.0.0.1'),
  apiPort: z.coerce.number().int().min(0).max(65535).default(8081),
  /** Run the read side beside the collector in `tracklake serve` (`--no-api` turns it off). */
  api: z.boolean().default(true),
  /** Requests a minute one token may make to the query API; over it, 429 with Retry-After. */
  apiRateLimit: z.coerce.number().int().min(1).max(1_000_000).default(600),
  /** How often the read cache looks for new aggregate, session and tracking files. */
  apiRefreshSeconds: z.coerce.number().min(1).max(3600).default(10),
  /**
   * What the collector keeps of the client's address before anything is logged: full, truncate (IPv4 /24,
   * IPv6 /48), hash (keyed, stable within a UTC day) or drop.
   */
  ipMode: retention.ipMode.default('full'),
  /** Decimals kept of `long`/`lat` (unset: as sent; 2 is about a kilometre). */
  geoPrecision: retention.geoPrecision.optional(),
  /** Per write key, what differs from ipMode and geoPrecision: {"web-key": {"ipMode": "drop"}}. */
  sourceRetention: z.record(z.string().min(1).max(256), z.strictObject({ ipMode: retention.ipMode.optional(), geoPrecision: geoPrecision.optional() })).default({}),
  /**
   * Keys the hashes of suppressed subjects and of hashed addresses (at least 32 characters). Unset: one is
   * made once and kept in the bucket (`privacy/secret`), so every node on the bucket shares it.
   */
  privacySecret: z.string().min(32, 'at least 32 characters').optional(),
  /** How often a collector reads the suppression lists from the bucket (a regulation applies within this). */
  privacyRefreshSeconds: z.coerce.number().min(1).max(60).default(30),
  /**
   * How often a collector writes its live counts (messages acknowledged per tenant and minute, the last 30
   * minutes) to `live/<node>.json` for the dashboard's live panel; 0: never.
   */
  liveIntervalMs: z.coerce.number().int().min(0).max(600_000).default(5000),
  /** Window within which a repeated messageId is a duplicate. */
  dedupWindowHours: z.coerce.number().min(0).max(24 * 7).default(24),
  /**
   * Redis (≥ 6) or Valkey shared by the collectors on one bucket: a message id is claimed there when it
   * ships, so a retry that reached another node is stored once, and one node runs the nightly jobs.
   */
  dedupRedisUrl: z.string().regex(/^rediss?:\/\/\S+$/, 'a redis:// or rediss:// URL').optional(),
  /**
   * Memory budget of the duplicate index (120 bytes per id at its peak). Over it the oldest ids leave
   * first and the effective window shrinks. Unset: a quarter of the machine's memory.
   */
  dedupMaxBytes: z.coerce.number().int().min(1024 * 1024).default(() => Math.floor(os.totalmem() / 4)),
  /** Worker threads that parse and map requests; unset: one per core beyond the first (0: on the request thread). */
  ingestWorkers: z.coerce.number().int().min(0).max(64).optional(),
  /** A request must arrive whole within this time (headers within 10 s at most): slow clients cannot hold the server. */
  requestTimeoutMs: z.coerce.number().int().min(100).max(600_000).default(30_000),
  /** How long SIGTERM waits for the final flush to storage. */
  shutdownTimeoutMs: z.coerce.number().int().min(0).default(30_000),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Extra aggregate metrics beyond view, share and chat. */
  metrics: z.array(metricSchema).default([]),
  /** The nightly job: time of day (HH:MM) and IANA time zone. */
  scheduleTime: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM, 24-hour').default('01:00'),
  timezone: z
    .string()
    .min(1)
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'an IANA time zone such as UTC or Europe/Paris')
    .default('UTC'),
  scheduler: z.boolean().default(true),
  /** Track analysis: a session ends after this many idle minutes. */
  inactivityMinutes: z.coerce.number().positive().max(24 * 60).default(30),
  /** Track analysis: let bot rows take part (they are excluded by default). */
  sessionsIncludeBots: z.boolean().default(false),
  /**
   * Memory DuckDB may use in a job run (aggregates, track analysis); beyond it, it spills to the scratch
   * folder. Unset: a quarter of the machine's memory (the collector and the read side need the rest).
   */
  jobMemoryLimit: z.coerce.number().int().min(128 * MiB, 'at least 128 MiB (DuckDB reads CSV in 32 MiB buffers)').default(() => Math.floor(os.totalmem() / 4)),
  /** Where jobs stage inputs, render outputs and spill; unset: the system's temp folder. */
  scratchDir: z.string().min(1).optional(),
  /** Days the nightly run looks back for changed or missing days. */
  lookbackDays: z.coerce.number().int().min(1).max(3660).default(35),
  /** Where each node forwards the messages it logged (config/destinations.ts); a config file sets these. */
  destinations: destinationsSchema,
});

/** The parsed configuration; the log's folder is resolved (its default lies in the state folder). */
export type Config = Readonly<Omit<z.infer<typeof configSchema>, 'walDir'> & { walDir: string }>;

/** Environment variable → setting; list-valued ones are parsed below. */
const ENV: Record<string, keyof z.infer<typeof configSchema>> = {
  TRACKLAKE_HOST: 'host',
  TRACKLAKE_PORT: 'port',
  TRACKLAKE_STORAGE: 'storage',
  TRACKLAKE_STATE_DIR: 'stateDir',
  TRACKLAKE_WAL_DIR: 'walDir',
  AWS_REGION: 's3Region',
  AWS_ENDPOINT_URL: 's3Endpoint',
  TRACKLAKE_S3_FORCE_PATH_STYLE: 's3ForcePathStyle',
  TRACKLAKE_FLUSH_INTERVAL_MS: 'flushIntervalMs',
  TRACKLAKE_MAX_SEGMENT_BYTES: 'maxSegmentBytes',
  TRACKLAKE_MAX_BUFFER_BYTES: 'maxBufferBytes',
  TRACKLAKE_SOURCES: 'sources',
  TRACKLAKE_PLANS: 'plans',
  TRACKLAKE_CORS_ORIGINS: 'corsOrigins',
  TRACKLAKE_TRUST_PROXY: 'trustProxy',
  TRACKLAKE_PUBLIC_URL: 'publicUrl',
  TRACKLAKE_NODE_ID: 'nodeId',
  TRACKLAKE_DEDUP_WINDOW_HOURS: 'dedupWindowHours',
  TRACKLAKE_DEDUP_MAX_BYTES: 'dedupMaxBytes',
  TRACKLAKE_DEDUP_REDIS_URL: 'dedupRedisUrl',
  TRACKLAKE_API_SECRET: 'apiSecret',
  TRACKLAKE_API_HOST: 'apiHost',
  TRACKLAKE_API_PORT: 'apiPort',
  TRACKLAKE_API: 'api',
  TRACKLAKE_API_RATE_LIMIT: 'apiRateLimit',
  TRACKLAKE_API_REFRESH_SECONDS: 'apiRefreshSeconds',
  TRACKLAKE_SHUTDOWN_TIMEOUT_MS: 'shutdownTimeoutMs',
  TRACKLAKE_REQUEST_TIMEOUT_MS: 'requestTimeoutMs',
  TRACKLAKE_INGEST_WORKERS: 'ingestWorkers',
  TRACKLAKE_LOG_LEVEL: 'logLevel',
  TRACKLAKE_SCHEDULE_TIME: 'scheduleTime',
  TRACKLAKE_TIMEZONE: 'timezone',
  TRACKLAKE_SCHEDULER: 'scheduler',
  TRACKLAKE_LOOKBACK_DAYS: 'lookbackDays',
  TRACKLAKE_JOB_MEMORY_LIMIT: 'jobMemoryLimit',
  TRACKLAKE_SCRATCH_DIR: 'scratchDir',
  TRACKLAKE_INACTIVITY_MINUTES: 'inactivityMinutes',
  TRACKLAKE_SESSIONS_INCLUDE_BOTS: 'sessionsIncludeBots',
  TRACKLAKE_IP_MODE: 'ipMode',
  TRACKLAKE_GEO_PRECISION: 'geoPrecision',
  TRACKLAKE_PRIVACY_SECRET: 'privacySecret',
  TRACKLAKE_PRIVACY_REFRESH_SECONDS: 'privacyRefreshSeconds',
  TRACKLAKE_LIVE_INTERVAL_MS: 'liveIntervalMs',
};

/** What the pairs of a list setting are: the two sides' names, and what a repeated left side is. */
const PAIRS = { sources: ['key', 'tenant', 'write key'], plans: ['tenant', 'file', 'tenant'] } as const;

/** "key1=tenantA,key2=tenantB" → {key1: "tenantA", key2: "tenantB"} (sources; plans are "tenant=file,…"). */
export function parsePairs(text: string, setting: string, kind: keyof typeof PAIRS): Record<string, string> {
  const shape = PAIRS[kind];
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) throw new ConfigError(setting, `"${part}" is not ${shape[0]}=${shape[1]}`);
    const key = part.slice(0, eq).trim();
    if (Object.hasOwn(out, key)) throw new ConfigError(setting, `${shape[2]} listed twice`);
    out[key] = part.slice(eq + 1).trim();
  }
  return out;
}

const BOOL: Record<string, boolean> = { true: true, '1': true, yes: true, false: false, '0': false, no: false };

function envValue(name: string, setting: string, raw: string): unknown {
  if (setting === 'sources' || setting === 'plans') return parsePairs(raw, name, setting);
  if (setting === 'corsOrigins') return raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (setting === 'trustProxy' || setting === 'scheduler' || setting === 's3ForcePathStyle' || setting === 'sessionsIncludeBots' || setting === 'api') {
    const b = BOOL[raw.trim().toLowerCase()];
    if (b === undefined) throw new ConfigError(name, `"${raw}" is not true or false`);
    return b;
  }
  return raw;
}

const ENV_REFERENCE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * A config file's value with each `${env:NAME}` in its strings replaced by that environment variable's value:
 * a webhook's secret, a database's password or a write key need not be written in a file that is checked in
 * or mounted for everyone to read. A variable that is not set (or empty) stops start-up, naming the setting.
 */
function withEnvReferences(v: unknown, env: Record<string, string | undefined>, at: PropertyKey[], root: unknown): unknown {
  if (typeof v === 'string') {
    return v.replace(ENV_REFERENCE, (_, name: string) => {
      const value = env[name];
      if (value === undefined || value === '') throw new ConfigError(destinationSetting(at, root) ?? at.join('.'), `the environment variable ${name} it refers to is not set`);
      return value;
    });
  }
  if (Array.isArray(v)) return v.map((x, i) => withEnvReferences(x, env, [...at, i], root));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withEnvReferences(x, env, [...at, k], root)]));
  return v;
}

export interface ConfigInput {
  /** Settings given on the command line (undefined ones are ignored). */
  flags?: Record<string, unknown>;
  env?: Record<string, string | undefined>;
  /** Path of a JSON config file. */
  configFile?: string;
}

export function loadConfig(input: ConfigInput = {}): Config {
  const env = input.env ?? {};
  const file = input.configFile ?? env.TRACKLAKE_CONFIG;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError('config', `cannot read ${file}: ${(e as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError('config', `${file} is not valid JSON: ${(e as Error).message}`);
    }
    if (fromFile === null || typeof fromFile !== 'object' || Array.isArray(fromFile)) throw new ConfigError('config', `${file} must hold a JSON object`);
    fromFile = withEnvReferences(fromFile, env, [], fromFile) as Record<string, unknown>;
    const plans = fromFile.plans;
    if (plans && typeof plans === 'object' && !Array.isArray(plans)) {
      fromFile.plans = Object.fromEntries(Object.entries(plans).map(([t, f]) => [t, typeof f === 'string' && f !== '' ? path.resolve(path.dirname(file), f) : f]));
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') fromEnv[setting] = envValue(name, setting, raw);
  }
  const fromFlags = Object.fromEntries(Object.entries(input.flags ?? {}).filter(([, v]) => v !== undefined));
  const merged = { ...fromFile, ...fromEnv, ...fromFlags };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const setting = destinationSetting(issue.path, merged) ?? (issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'config'));
    throw new ConfigError(setting, issue.message);
  }
  const cfg = { ...parsed.data, walDir: parsed.data.walDir ?? path.join(parsed.data.stateDir, 'wal') };
  if (Object.keys(cfg.sources).length === 0) cfg.sources = { dev: 'demo' };
  const tenants = new Set(Object.values(cfg.sources));
  for (const t of Object.keys(cfg.plans)) {
    if (!tenants.has(t)) throw new ConfigError(`plans.${t}`, `no source sends to tenant "${t}" (sources name ${[...tenants].join(', ')})`);
  }
  for (const d of cfg.destinations) {
    for (const t of d.tenants ?? []) if (!tenants.has(t)) throw new ConfigError(`destinations.${d.name}.tenants`, `no source sends to tenant "${t}"`);
  }
  for (const key of Object.keys(cfg.sourceRetention)) {
    if (!Object.hasOwn(cfg.sources, key)) throw new ConfigError(`sourceRetention.${key}`, 'no source has this write key');
  }
  const names = new Set(['view', 'share', 'chat']);
  for (const m of cfg.metrics) {
    if (names.has(m.name)) throw new ConfigError(`metrics.${m.name}`, 'a metric of that name already exists');
    names.add(m.name);
  }
  return deepFreeze(cfg);
}

/** A --plans flag's value ("tenant=file,…"), for commander. */
export const plansArg = (v: string) => parsePairs(v, '--plans', 'plans');

/** Whether sources came from configuration or are the embedded dev default. */
export const s3Settings = (cfg: Config) => ({ region: cfg.s3Region, endpoint: cfg.s3Endpoint, forcePathStyle: cfg.s3ForcePathStyle });

/** What each source keeps of addresses and positions (privacy/reduce.ts), for the request preparers. */
export function retentionSettings(cfg: Config): { all: Retention; bySource: Record<string, Retention> } {
  const all: Retention = { ipMode: cfg.ipMode, geoPrecision: cfg.geoPrecision };
  const bySource: Record<string, Retention> = {};
  for (const [key, r] of Object.entries(cfg.sourceRetention)) bySource[key] = { ipMode: r.ipMode ?? all.ipMode, geoPrecision: r.geoPrecision ?? all.geoPrecision };
  return { all, bySource };
}

/** Whether any source hashes addresses (then the privacy secret is needed at the door). */
export const hashesAddresses = (cfg: Config) => cfg.ipMode === 'hash' || Object.values(cfg.sourceRetention).some((r) => r.ipMode === 'hash');

/** What a job run may use, from the settings. */
export const jobResources = (cfg: Config) => ({ memoryLimitBytes: cfg.jobMemoryLimit, tmpDir: cfg.scratchDir });

export const isDevSources = (cfg: Config) => Object.keys(cfg.sources).length === 1 && cfg.sources.dev === 'demo';

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
