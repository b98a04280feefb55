/** Test harness: temp folders, an in-process collector on a free loopback port, a child-process collector, file readers. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { pino, type Logger } from 'pino';
import { buildServer } from '../src/api/server.js';
import { loadConfig, type Config } from '../src/config/config.js';
import { destinationReaders } from '../src/forward/destinations.js';
import { openIngest, type IngestNode } from '../src/ingest/node.js';
import { ManualClock, type Clock } from '../src/lib/clock.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { prng } from '../src/segment/simulator.js';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

/** 2026-03-15T12:00:00Z: tests never read the wall clock's date. */
export const T0 = Date.parse('2026-03-15T12:00:00.000Z');

const made: string[] = [];
// Each test file runs in a process of its own: its folders go when it exits, passed or failed (a failing
// test's folder can be kept for a look with KEEP_TEST_DIRS=1).
process.on('exit', () => {
  if (process.env.KEEP_TEST_DIRS) return;
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // A folder that cannot go now is only litter in the temp folder: it never fails the tests.
    }
  }
});

/** A new folder under the system's temp folder, removed when the test process exits. */
export function tempDir(name = 'tl'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  made.push(dir);
  return dir;
}

export const silent = pino({ level: 'silent' });

export interface TestCollector {
  url: string;
  node: IngestNode;
  store: ObjectStore;
  dir: string;
  clock: Clock;
  config: Config;
  close(): Promise<void>;
}

export async function startCollector(settings: Record<string, unknown> = {}, opts: { clock?: Clock; store?: ObjectStore; dir?: string; logger?: Logger } = {}): Promise<TestCollector> {
  const dir = opts.dir ?? tempDir();
  const config = loadConfig({ flags: { port: 0, storage: path.join(dir, 'data'), stateDir: path.join(dir, 'state'), walDir: path.join(dir, 'wal'), flushIntervalMs: 3_600_000, sources: { dev: 'demo' }, logLevel: 'silent', ...settings } });
  const clock = opts.clock ?? new ManualClock(T0);
  const store = opts.store ?? new LocalStore(config.storage);
  const logger = opts.logger ?? silent;
  const node = await openIngest(config, { store, clock, logger, readers: destinationReaders(config, { store, clock, logger }) });
  const app = await buildServer({ config, collector: node.collector, preparer: node.preparer, clock: node.clock, metrics: node.metrics, logger: silent, readiness: node.readiness });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    node,
    store,
    dir,
    clock,
    config,
    async close() {
      await app.close();
      await node.close();
    },
  };
}

export const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: basic('dev'), ...headers },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? (body as string) : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, text, headers: res.headers };
}

let tagged = 0;
/**
 * Sends batches of 10 track events to a collector, each event's messageId and correlation id `<tag>-<n>`:
 * `batches` of them, or until `until` settles. Returns the ids acknowledged with 200, every status seen (0
 * for no answer: not listening yet, or killed mid-request) and the Retry-After values.
 */
export async function sendTagged(url: string, o: { tag: string; batches?: number; until?: Promise<unknown>; userId?: string }): Promise<{ acked: string[]; statuses: number[]; retryAfter: string[] }> {
  let done = false;
  void o.until?.then(() => (done = true));
  const acked: string[] = [];
  const statuses: number[] = [];
  const retryAfter: string[] = [];
  for (let b = 0; o.until ? !done : b < (o.batches ?? 1); b++) {
    const batch = Array.from({ length: 10 }, () => {
      const id = `${o.tag}-${tagged++}`;
      return { type: 'track', event: 'view', messageId: id, ...(o.userId ? { userId: o.userId } : { anonymousId: 'dev' }), properties: { correlation_id: id, product_id: 'p' } };
    });
    try {
      const res = await fetch(`${url}/v1/batch`, { method: 'POST', headers: { authorization: basic('dev'), 'content-type': 'application/json' }, body: JSON.stringify({ batch }) });
      statuses.push(res.status);
      if (res.status === 200) acked.push(...batch.map((m) => m.messageId));
      if (res.headers.get('retry-after')) retryAfter.push(res.headers.get('retry-after')!);
      await res.arrayBuffer();
    } catch {
      statuses.push(0);
      if (o.until) await new Promise((r) => setTimeout(r, 5)); // not listening yet: try again shortly
    }
  }
  return { acked, statuses, retryAfter };
}

/** Every row of every CSV under prefix (state files aside), as objects keyed by header. */
export async function readRows(store: ObjectStore, prefix = 'tracks/'): Promise<Array<Record<string, string>>> {
  const rows: Array<Record<string, string>> = [];
  for (const o of await store.list(prefix)) {
    if (!o.key.endsWith('.csv') || o.key.includes('/_state/')) continue;
    const text = (await store.get(o.key))!.toString('utf8');
    rows.push(...(parse(text, { columns: true }) as Array<Record<string, string>>));
  }
  return rows;
}

export async function flushed(c: TestCollector): Promise<void> {
  await c.node.shipper.flush();
}

export function track(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'track', event: 'Product Viewed', anonymousId: 'dev-1', properties: { product_id: 'p1', merchant_id: 'm1' }, timestamp: new Date(T0 - 60_000).toISOString(), ...over };
}

/** A collector as a real child process (`tracklake serve`), for crash and signal tests. */
export interface ChildCollector {
  proc: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  stderr: () => string;
  /** Its log (pino writes to stdout). */
  stdout: () => string;
}

export async function spawnCollector(dir: string, extra: string[] = [], env: Record<string, string> = {}): Promise<ChildCollector> {
  // The read side only where a test asks for it (--api-port): collectors under test share no port 8081.
  const api = extra.includes('--api-port') ? [] : ['--no-api'];
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--storage', path.join(dir, 'data'), '--wal-dir', path.join(dir, 'wal'), '--log-level', 'info', ...api, ...extra], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`collector did not start: ${err}`)), 15_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"address":"(http:\/\/[^"]+)"[^\n]*"msg":"collector listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.on('exit', (code) => reject(new Error(`collector exited ${code}: ${err}`)));
  });
  return { proc, url, exited, stderr: () => err, stdout: () => out };
}

export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(root);
  return out.sort();
}

/**
 * A random sequence of late and removed tracking files over some days, the same in every store: each step
 * touches one to `maxTouched` days; on each, a file goes away (three times in ten, when the day has two or
 * more) or `add` writes a new one to every store and returns its key. `check` runs after every step.
 */
export async function randomFileSteps(o: {
  days: readonly string[];
  seed: number;
  steps: number;
  maxTouched: number;
  stores: readonly ObjectStore[];
  add: (day: string, step: number, rnd: () => number) => Promise<string>;
  check: (touched: string[], step: number) => Promise<void>;
}): Promise<void> {
  const rnd = prng(o.seed);
  const files = new Map<string, string[]>(o.days.map((d) => [d, []]));
  for (let step = 0; step < o.steps; step++) {
    const touched = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * o.maxTouched) }, () => o.days[Math.floor(rnd() * o.days.length)]!))].sort();
    for (const day of touched) {
      const mine = files.get(day)!;
      if (mine.length > 1 && rnd() < 0.3) {
        const key = mine.splice(Math.floor(rnd() * mine.length), 1)[0]!;
        for (const store of o.stores) await store.delete(key);
      } else {
        mine.push(await o.add(day, step, rnd));
      }
    }
    await o.check(touched, step);
  }
}

/**
 * A store that passes each operation to `inner`, save those `over` replaces, and has no local paths (every
 * read goes through get(), as on S3): what a test holds, slows or fails one operation of a bucket with.
 */
export function storeOver(inner: ObjectStore, over: Partial<ObjectStore> = {}): ObjectStore {
  return { location: inner.location, put: (k, b) => inner.put(k, b), putFile: (k, f) => inner.putFile(k, f), get: (k) => inner.get(k), list: (p) => inner.list(p), delete: (k) => inner.delete(k), ...over };
}
