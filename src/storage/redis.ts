/**
 * The state collectors share when several run on one bucket, in Redis (≥ 6) or Valkey, through ioredis:
 * - id claims: each message id a node ships is claimed for the duplicate window, by the segment shipping it,
 *   so a retry that reached another node is stored once (ingest/shipper.ts);
 * - leases: one node runs the nightly jobs (jobs/scheduler.ts).
 *
 * Every call fails fast when Redis is away (no offline queue, a command timeout): the caller waits and retries
 * as it does for storage, and nothing is acknowledged or lost meanwhile. Keys live under `tracklake:`.
 */
import { Redis } from 'ioredis';

/** Claims of message ids (64-bit fingerprints, lib/fingerprint.ts) by the segments that ship them. */
export interface IdClaims {
  /**
   * For each fingerprint (two int32 each), 1 when `owner` may store its message: claimed now, or claimed
   * before by the same owner (the segment shipped again after a crash); 0 when another owner holds it.
   */
  claim(fingerprints: Int32Array, owner: string, ttlSeconds: number): Promise<Uint8Array>;
}

/** A lease: held by one holder at a time, until it is released or expires. */
export interface Leases {
  /** Takes the lease when it is free (or already this holder's); true when held. */
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Extends the lease when this holder still holds it; false when it was lost. */
  renew(name: string, holder: string, ttlMs: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
  /** A mark that lasts ttlMs (a night's work done), and whether it is set. */
  mark(name: string, ttlMs: number): Promise<void>;
  marked(name: string): Promise<boolean>;
}

/** Claims per script call: large enough to make a segment of a million ids a few hundred calls. */
const CLAIM_BATCH = 4096;

// SET NX EX claims a free id; an id already held is kept only by the owner that holds it.
const CLAIM = `
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'EX', ARGV[2]) then out[i] = 1
  elseif redis.call('GET', key) == ARGV[1] then out[i] = 1
  else out[i] = 0 end
end
return out`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const ACQUIRE = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 elseif redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 else return 0 end`;

type Scripted = Redis & {
  tlClaim(numKeys: number, ...args: Array<string | number>): Promise<number[]>;
  tlRenew(key: string, holder: string, ttlMs: number): Promise<number>;
  tlRelease(key: string, holder: string): Promise<number>;
  tlAcquire(key: string, holder: string, ttlMs: number): Promise<number>;
};

export class RedisState implements IdClaims, Leases {
  private readonly redis: Scripted;
  /** The URL without a password, for messages. */
  readonly where: string;

  private constructor(url: string) {
    this.where = url.replace(/\/\/[^@/]*@/, '//');
    const redis = new Redis(url, {
      lazyConnect: true,
      // A call while Redis is away fails at once instead of queueing: the caller retries with backoff.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 10_000,
      // Reconnects within a second of Redis coming back: shipping resumes at once.
      retryStrategy: (times) => Math.min(1000, 50 * 2 ** Math.min(times, 5)),
    });
    // Connection errors are reported by the calls that fail; without a listener ioredis logs each one.
    redis.on('error', () => undefined);
    redis.defineCommand('tlClaim', { lua: CLAIM });
    redis.defineCommand('tlRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('tlRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('tlAcquire', { numberOfKeys: 1, lua: ACQUIRE });
    this.redis = redis as Scripted;
  }

  /** Connects (the URL is checked with the configuration); Redis being down does not stop the start. */
  static async open(url: string): Promise<RedisState> {
    const state = new RedisState(url);
    await state.redis.connect().catch(() => undefined); // reconnects on its own; calls fail until it is up
    return state;
  }

  async claim(fingerprints: Int32Array, owner: string, ttlSeconds: number): Promise<Uint8Array> {
    const n = fingerprints.length / 2;
    const keep = new Uint8Array(n);
    const ttl = Math.max(1, Math.ceil(ttlSeconds));
    for (let from = 0; from < n; from += CLAIM_BATCH) {
      const to = Math.min(n, from + CLAIM_BATCH);
      const keys: string[] = [];
      for (let i = from; i < to; i++) keys.push(idKey(fingerprints[2 * i]!, fingerprints[2 * i + 1]!));
      const answers = await this.call(() => this.redis.tlClaim(keys.length, ...keys, owner, ttl));
      for (let i = from; i < to; i++) keep[i] = answers[i - from] === 1 ? 1 : 0;
    }
    return keep;
  }

  async acquire(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return (await this.call(() => this.redis.tlAcquire(leaseKey(name), holder, ttlMs))) === 1;
  }

  async renew(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return (await this.call(() => this.redis.tlRenew(leaseKey(name), holder, ttlMs))) === 1;
  }

  async release(name: string, holder: string): Promise<void> {
    await this.call(() => this.redis.tlRelease(leaseKey(name), holder));
  }

  async mark(name: string, ttlMs: number): Promise<void> {
    await this.call(() => this.redis.set(`tracklake:mark:${name}`, '1', 'PX', ttlMs));
  }

  async marked(name: string): Promise<boolean> {
    return (await this.call(() => this.redis.exists(`tracklake:mark:${name}`))) === 1;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  /** A call, its failure named after the Redis it went to. */
  private async call<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (e) {
      throw new Error(`shared state ${this.where}: ${(e as Error).message}`);
    }
  }
}

/** A message id's key: its 64-bit fingerprint in hex (the fingerprint already holds the tenant). */
function idKey(hi: number, lo: number): string {
  return `tracklake:id:${(hi >>> 0).toString(16).padStart(8, '0')}${(lo >>> 0).toString(16).padStart(8, '0')}`;
}

const leaseKey = (name: string) => `tracklake:lease:${name}`;
