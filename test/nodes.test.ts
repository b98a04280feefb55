/**
 * Several collectors on one bucket sharing a real redis-server (`dedupRedisUrl`): a message sent to every
 * node, and retries spread over them while one is killed and restarted, is stored exactly once; Redis
 * stopped and restarted under load loses and doubles nothing; one node runs a night, and another finishes
 * it when the lease's holder dies. Real child processes, a real Redis.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { runNightlyLeased } from '../src/jobs/scheduler.js';
import { LocalStore } from '../src/storage/local.js';
import { RedisState } from '../src/storage/redis.js';
import { basic, readRows, spawnCollector, tempDir, type ChildCollector } from './helpers.js';
import { startRedis } from './redis.js';

const silent = pino({ level: 'silent' });

/** A batch of 10 track calls with the given ids, as a client sends it again on a retry. */
async function send(url: string, ids: string[]): Promise<number> {
  const batch = ids.map((id) => ({ type: 'track', event: 'view', messageId: id, anonymousId: 'dev', properties: { correlation_id: id, product_id: 'p' } }));
  try {
    const res = await fetch(`${url}/v1/batch`, { method: 'POST', headers: { authorization: basic('dev'), 'content-type': 'application/json' }, body: JSON.stringify({ batch }) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** How many rows each correlation id (the message id here) has in the bucket. */
async function copies(bucket: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const r of await readRows(new LocalStore(bucket))) out.set(r.correlationid!, (out.get(r.correlationid!) ?? 0) + 1);
  return out;
}

/**
 * A Redis, a bucket, and a way to start a collector on them: each node its own state folder, short flushes
 * so segments ship (and claim) while the test runs.
 */
async function cluster(name: string) {
  const redis = await startRedis();
  after(() => redis.stop());
  const dir = tempDir(name);
  const bucket = path.join(dir, 'bucket');
  const node = (id: string) => {
    mkdirSync(path.join(dir, id), { recursive: true });
    return spawnCollector(path.join(dir, id), ['--storage', bucket, '--node-id', id, '--dedup-redis-url', redis.url, '--flush-interval-ms', '200', '--no-scheduler']);
  };
  return { redis, bucket, node };
}

/** Stops the nodes (SIGTERM ships everything, exit 0), then: every acknowledged message is in the bucket once. */
async function stoppedOnce(nodes: ChildCollector[], bucket: string, acked: Set<string>): Promise<void> {
  for (const n of nodes) {
    n.proc.kill('SIGTERM');
    assert.equal(await n.exited, 0, n.stderr());
  }
  const stored = await copies(bucket);
  assert.deepEqual([...acked].filter((id) => stored.get(id) !== 1), [], 'every acknowledged message stored exactly once');
  assert.equal(stored.size, acked.size, 'and nothing else');
}

describe('collectors sharing a Redis', () => {
  it('store a message sent to all three, and retries spread over them through a kill -9, exactly once', async () => {
    const { redis, bucket, node } = await cluster('nodes');
    const nodes: ChildCollector[] = [await node('a'), await node('b'), await node('c')];
    try {
      const acked = new Set<string>();
      // The same batch to every node: each acknowledges it (its own log), the bucket gets it once.
      const same = Array.from({ length: 10 }, (_, i) => `same-${i}`);
      for (const n of nodes) assert.equal(await send(n.url, same), 200);
      same.forEach((id) => acked.add(id));
      // Retries: each batch goes to one node, then again to the next, as a client whose first try timed out.
      for (let b = 0; b < 30; b++) {
        const ids = Array.from({ length: 10 }, (_, i) => `retry-${b}-${i}`);
        if ((await send(nodes[b % 3]!.url, ids)) === 200) ids.forEach((id) => acked.add(id));
        if ((await send(nodes[(b + 1) % 3]!.url, ids)) === 200) ids.forEach((id) => acked.add(id));
        if (b === 12) {
          // Node b dies mid-stream with what it acknowledged only in its log; restarted on the same folder.
          nodes[1]!.proc.kill('SIGKILL');
          await nodes[1]!.exited;
          nodes[1] = await node('b');
        }
      }
      await stoppedOnce(nodes, bucket, acked);
    } finally {
      for (const n of nodes) if (n.proc.exitCode === null) n.proc.kill('SIGKILL');
    }
  });

  it('keep accepting while Redis is down, and ship everything once, exactly once, when it is back', async () => {
    const { redis, bucket, node } = await cluster('nodes-down');
    const a = await node('a');
    const b = await node('b');
    try {
      const acked = new Set<string>();
      const round = async (tag: string, n: number) => {
        for (let k = 0; k < n; k++) {
          const ids = Array.from({ length: 10 }, (_, i) => `${tag}-${k}-${i}`);
          for (const c of [a, b]) if ((await send(c.url, ids)) === 200) ids.forEach((id) => acked.add(id));
        }
      };
      await round('before', 5);
      await redis.stop();
      await round('during', 10); // acknowledged into the logs; nothing ships meanwhile
      const ready = await fetch(`${a.url}/ready`);
      const body = (await ready.json()) as { checks: Record<string, unknown> };
      await new Promise((r) => setTimeout(r, 600)); // a flush or two fail against the stopped Redis
      const named = JSON.stringify((await (await fetch(`${a.url}/ready`)).json()) as unknown);
      assert.match(named, /shared state redis:\/\/127\.0\.0\.1:\d+/, `ready names the cause: ${named} (${JSON.stringify(body)})`);
      await redis.start();
      // Ready again once a segment has shipped through the returned Redis.
      for (const c of [a, b]) {
        for (let i = 0; i < 400 && (await fetch(`${c.url}/ready`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
        assert.equal((await fetch(`${c.url}/ready`)).status, 200, 'ready again');
      }
      await round('after', 5);
      await stoppedOnce([a, b], bucket, acked);
    } finally {
      for (const c of [a, b]) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    }
  });

  it('runs a night on one node, and another finishes it when the lease holder dies', async () => {
    const redis = await startRedis();
    after(() => redis.stop());
    const ttlMs = 600;
    const ran: string[] = [];
    const task = (node: string, hang?: Promise<void>) => [{ name: 'jobs', run: async () => (ran.push(node), await hang, {}) }];
    // Two nodes at the same instant: one runs the jobs, the other waits and sees the night done.
    const [s1, s2] = [await RedisState.open(redis.url), await RedisState.open(redis.url)];
    const both = await Promise.all([
      runNightlyLeased(task('n1'), '2026-03-15', silent, { leases: s1, holder: 'n1', ttlMs }),
      runNightlyLeased(task('n2'), '2026-03-15', silent, { leases: s2, holder: 'n2', ttlMs }),
    ]);
    assert.deepEqual(both.filter(Boolean).length, 1, 'one node ran the night');
    assert.equal(ran.length, 1);
    // The next night's holder, a process of its own, is killed with kill -9 mid-run (no renewals, no mark);
    // the other takes the lease once it expires and runs the jobs, which pick up where the first left off.
    ran.length = 0;
    const here = path.dirname(fileURLToPath(import.meta.url));
    const scheduler = pathToFileURL(path.join(here, '..', 'src', 'jobs', 'scheduler.js')).href;
    const redisState = pathToFileURL(path.join(here, '..', 'src', 'storage', 'redis.js')).href;
    const dying = spawn(process.execPath, ['--input-type=module', '-e', `
      const { runNightlyLeased } = await import(${JSON.stringify(scheduler)});
      const { RedisState } = await import(${JSON.stringify(redisState)});
      const { pino } = await import('pino');
      const leases = await RedisState.open(${JSON.stringify(redis.url)});
      const tasks = [{ name: 'jobs', run: () => (process.stdout.write('running\\n'), new Promise(() => {})) }];
      await runNightlyLeased(tasks, '2026-03-16', pino({ level: 'silent' }), { leases, holder: 'dying', ttlMs: ${ttlMs} });
    `], { cwd: here, stdio: ['ignore', 'pipe', 'inherit'] });
    after(() => void dying.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      dying.stdout!.on('data', (d: Buffer) => d.toString().includes('running') && resolve());
      dying.on('exit', (code) => reject(new Error(`the lease holder exited ${code} before running`)));
    });
    dying.kill('SIGKILL');
    const d2 = await RedisState.open(redis.url);
    const t0 = Date.now();
    assert.equal(await runNightlyLeased(task('survivor'), '2026-03-16', silent, { leases: d2, holder: 'survivor', ttlMs }), true);
    assert.deepEqual(ran, ['survivor']);
    const waited = Date.now() - t0;
    assert.ok(waited >= ttlMs / 4, `the survivor waited for the dead holder's lease to expire (${waited} ms)`);
    assert.ok(waited < 5 * ttlMs, 'within the lease time');
    for (const s of [s1, s2, d2]) await s.close();
  });
});
