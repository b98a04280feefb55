/** Faults a production collector meets: storage outages, a full buffer, kills mid-upload, a full disk, two nodes. */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { ObjectStore } from '../src/storage/store.js';
import { post, readRows, sendTagged, spawnCollector, startCollector, tempDir, track } from './helpers.js';
import { TestS3 } from './s3server.js';

const send = (url: string, n: number, tag: string) => sendTagged(url, { batches: n, tag });

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Every acked id appears exactly once in storage. */
async function assertExactlyOnce(store: ObjectStore, acked: string[]): Promise<void> {
  const counts = new Map<string, number>();
  for (const r of await readRows(store)) counts.set(r.correlationid!, (counts.get(r.correlationid!) ?? 0) + 1);
  assert.deepEqual([...counts].filter(([, n]) => n > 1), [], 'written more than once');
  assert.deepEqual(acked.filter((id) => !counts.has(id)), [], 'acknowledged but missing');
}

async function backlog(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^tracklake_log_buffered_bytes (\d+)/m.exec(text)?.[1] ?? NaN);
}

describe('a collector writing to S3', () => {
  it('keeps accepting through a storage outage and delivers everything exactly once when it returns', async () => {
    const s3 = await TestS3.start();
    const dir = tempDir('outage');
    const child = await spawnCollector(dir, ['--storage', `s3://${s3.bucket}/lake`, '--flush-interval-ms', '100'], s3.env());
    try {
      const acked = [...(await send(child.url, 20, 'before')).acked];
      await s3.down();
      const during = await send(child.url, 30, 'during');
      assert.ok(during.statuses.every((s) => s === 200), 'events are accepted into the log while storage is down');
      acked.push(...during.acked);
      await waitFor('/ready to report storage down', async () => (await fetch(`${child.url}/ready`)).status === 503);
      await s3.up();
      acked.push(...(await send(child.url, 10, 'after')).acked);
      await waitFor('the backlog to drain', async () => (await backlog(child.url)) === 0);
      await assertExactlyOnce(s3.store('lake'), acked);
      assert.equal((await fetch(`${child.url}/ready`)).status, 200);
    } finally {
      child.proc.kill('SIGKILL');
      await s3.down();
    }
  });

  it('answers 503 with Retry-After over its buffer budget, and 200 again once storage drains it', async () => {
    const s3 = new TestS3(await (await import('./s3server.js')).freePort());
    const dir = tempDir('budget');
    // Storage is down from the start; the budget is a few batches.
    const child = await spawnCollector(dir, ['--storage', `s3://${s3.bucket}/lake`, '--flush-interval-ms', '50', '--max-buffer-bytes', '8192'], s3.env());
    try {
      const first = await send(child.url, 40, 'budget');
      assert.ok(first.statuses.includes(200));
      assert.ok(first.statuses.includes(503), `no 503 in ${first.statuses.join(',')}`);
      assert.ok(first.retryAfter.length > 0 && first.retryAfter.every((s) => Number(s) > 0));
      await s3.up();
      await waitFor('2xx again', async () => (await send(child.url, 1, 'probe')).statuses[0] === 200);
      await waitFor('the backlog to drain', async () => (await backlog(child.url)) === 0);
      await assertExactlyOnce(s3.store('lake'), first.acked);
    } finally {
      child.proc.kill('SIGKILL');
      await s3.down();
    }
  });

  it('survives kill -9 during appends, rotations and uploads with nothing lost or doubled', async () => {
    const s3 = await TestS3.start();
    const dir = tempDir('kill-s3');
    const args = ['--storage', `s3://${s3.bucket}/lake`, '--flush-interval-ms', '30', '--max-segment-bytes', '4096', '--node-id', 'killer'];
    const acked: string[] = [];
    try {
      for (let round = 0; round < 4; round++) {
        const child = await spawnCollector(dir, args, s3.env());
        const load = Promise.all([0, 1, 2].map((w) => send(child.url, 200, `k${round}-${w}`)));
        await new Promise((r) => setTimeout(r, 200 + round * 120));
        child.proc.kill('SIGKILL');
        for (const r of await load) acked.push(...r.acked);
        await child.exited;
      }
      const last = await spawnCollector(dir, args, s3.env());
      last.proc.kill('SIGTERM');
      assert.equal(await last.exited, 0);
      assert.ok(acked.length > 100);
      await assertExactlyOnce(s3.store('lake'), acked);
    } finally {
      await s3.down();
    }
  });

  it('runs two collectors on one bucket: disjoint files whose union is every acknowledged event', async () => {
    const s3 = await TestS3.start();
    const a = await spawnCollector(tempDir('node-a'), ['--storage', `s3://${s3.bucket}/lake`, '--flush-interval-ms', '50'], s3.env());
    const b = await spawnCollector(tempDir('node-b'), ['--storage', `s3://${s3.bucket}/lake`, '--flush-interval-ms', '50'], s3.env());
    try {
      const [ra, rb] = await Promise.all([send(a.url, 60, 'node-a'), send(b.url, 60, 'node-b')]);
      a.proc.kill('SIGTERM');
      b.proc.kill('SIGTERM');
      assert.equal(await a.exited, 0);
      assert.equal(await b.exited, 0);
      const store = s3.store('lake');
      const keys = (await store.list('tracks/')).map((o) => o.key);
      const nodes = new Set(keys.map((k) => path.basename(k).replace(/-\d{12}\.csv$/, '')));
      assert.equal(nodes.size, 2, `files of two nodes: ${keys.join(', ')}`);
      await assertExactlyOnce(store, [...ra.acked, ...rb.acked]);
    } finally {
      a.proc.kill('SIGKILL');
      b.proc.kill('SIGKILL');
      await s3.down();
    }
  });
});

describe('a full disk', () => {
  it('gets 503 and never an acknowledgement for an event that was not fsynced', async () => {
    const dir = tempDir('full');
    const c = await startCollector({}, { dir });
    try {
      assert.equal((await post(`${c.url}/v1/track`, track({ messageId: 'before-full' }))).status, 200);
      // The next segment is /dev/full: every write to it fails with ENOSPC, as on a full disk.
      const next = Math.max(...(await fs.readdir(path.join(dir, 'wal'))).filter((n) => n.startsWith('seg-')).map((n) => Number(n.slice(4, 16)))) + 1;
      await fs.symlink('/dev/full', path.join(dir, 'wal', `seg-${String(next).padStart(12, '0')}.log`));
      await c.node.wal.seal();
      const refused = await post(`${c.url}/v1/track`, track({ messageId: 'on-full-disk' }));
      assert.equal(refused.status, 503);
      assert.equal(refused.json.code, 'log_unavailable');
      assert.ok(refused.headers.get('retry-after'));
      assert.equal((await post(`${c.url}/v1/track`, track({ messageId: 'still-full' }))).status, 503);
      const ready = await fetch(`${c.url}/ready`);
      assert.equal(ready.status, 503);
    } finally {
      await c.close().catch(() => undefined);
    }
    const rows = await readRows(c.store);
    assert.deepEqual(rows.map((r) => r.correlationid ?? ''), ['']);
  });
});

describe('a slow or stuck client', () => {
  it('is cut off after the request timeout while the server keeps answering others', async () => {
    const { connect } = await import('node:net');
    const c = await startCollector({ requestTimeoutMs: 400 });
    try {
      const port = Number(new URL(c.url).port);
      const started = Date.now();
      const closed = await new Promise<number>((resolve, reject) => {
        const sock = connect(port, '127.0.0.1', () => {
          // Headers that never end, then a body that never comes.
          sock.write('POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"event":');
        });
        sock.on('close', () => resolve(Date.now() - started));
        sock.on('error', () => undefined);
        setTimeout(() => reject(new Error('the stuck connection was never closed')), 5_000).unref();
      });
      assert.ok(closed >= 300 && closed < 3_000, `closed after ${closed} ms`);
      assert.equal((await post(`${c.url}/v1/track`, track())).status, 200);
    } finally {
      await c.close();
    }
  });
});
