import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import path from 'node:path';
import { LocalStore } from '../src/storage/local.js';
import { basic, readRows, spawnCollector, tempDir } from './helpers.js';

/** Sends batches until stopped; returns the messageIds the collector acknowledged with 200. */
async function load(url: string, stopAfterMs: number, tag: string): Promise<Set<string>> {
  const acked = new Set<string>();
  const deadline = Date.now() + stopAfterMs;
  let n = 0;
  const worker = async (w: number) => {
    while (Date.now() < deadline) {
      const batch = Array.from({ length: 10 }, () => {
        const id = `${tag}-${w}-${n++}`;
        return { type: 'track', event: 'Product Viewed', messageId: id, anonymousId: `d-${w}`, properties: { product_id: 'p1', merchant_id: 'm1', correlation_id: id }, timestamp: '2026-03-15T12:00:00.000Z' };
      });
      try {
        const res = await fetch(`${url}/v1/batch`, { method: 'POST', headers: { authorization: basic('dev'), 'content-type': 'application/json' }, body: JSON.stringify({ batch }) });
        if (res.status === 200) for (const m of batch) acked.add(m.messageId);
        await res.arrayBuffer();
      } catch {
        return; // the process was killed mid-request: that batch was never acknowledged
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(worker));
  return acked;
}

describe('a collector killed with SIGKILL', () => {
  it('loses no acknowledged event and duplicates none, across kills during appends, rotations and uploads', async () => {
    const dir = tempDir('crash');
    const store = new LocalStore(path.join(dir, 'data'));
    const acked = new Set<string>();
    // Tiny flush interval and segment size: rotations and uploads happen constantly, so kills land inside them.
    const flags = ['--flush-interval-ms', '25', '--max-segment-bytes', '4096', '--node-id', 'crashnode'];
    for (let round = 0; round < 4; round++) {
      const child = await spawnCollector(dir, flags);
      const loading = load(child.url, 10_000, `r${round}`);
      await new Promise((r) => setTimeout(r, 250 + round * 150));
      child.proc.kill('SIGKILL');
      for (const id of await loading) acked.add(id);
      await child.exited;
    }
    assert.ok(acked.size > 100, `only ${acked.size} events were acknowledged`);
    // A last, clean run recovers the log and flushes it on SIGTERM.
    const last = await spawnCollector(dir, flags);
    last.proc.kill('SIGTERM');
    assert.equal(await last.exited, 0, last.stderr());

    const rows = await readRows(store);
    // Each test event carries its messageId as correlation_id, so the files show exactly which events landed.
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(r.correlationid!, (seen.get(r.correlationid!) ?? 0) + 1);
    const twice = [...seen].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'events written more than once');
    const missing = [...acked].filter((id) => !seen.has(id));
    assert.deepEqual(missing, [], 'acknowledged events missing from storage');
    const keys = (await store.list('tracks/')).map((o) => o.key);
    assert.ok(keys.every((k) => /\/crashnode-\d{12}\.csv$/.test(k)));
    assert.equal(new Set(keys).size, keys.length);
  });
});

describe('duplicate detection across a restart', () => {
  it('still recognises a messageId accepted before the restart', async () => {
    const dir = tempDir('dup');
    const store = new LocalStore(path.join(dir, 'data'));
    const msg = { type: 'track', event: 'share', messageId: 'restart-dup', anonymousId: 'd', properties: { correlation_id: 'restart-dup' } };
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const child = await spawnCollector(dir, ['--flush-interval-ms', '50']);
      const res = await fetch(`${child.url}/v1/track`, { method: 'POST', headers: { authorization: basic('dev'), 'content-type': 'application/json' }, body: JSON.stringify(msg) });
      assert.equal(res.status, 200);
      await new Promise((r) => setTimeout(r, 200));
      child.proc.kill(signal);
      await child.exited;
    }
    const final = await spawnCollector(dir, ['--flush-interval-ms', '50']);
    final.proc.kill('SIGTERM');
    await final.exited;
    const rows = (await readRows(store)).filter((r) => r.correlationid === 'restart-dup');
    assert.equal(rows.length, 1);
  });

  it('recognises a messageId that was only in the log when the process was killed', async () => {
    const dir = tempDir('dup');
    const store = new LocalStore(path.join(dir, 'data'));
    const msg = { type: 'track', event: 'share', messageId: 'logged-dup', anonymousId: 'd', properties: { correlation_id: 'logged-dup' } };
    const send = (url: string) => fetch(`${url}/v1/track`, { method: 'POST', headers: { authorization: basic('dev'), 'content-type': 'application/json' }, body: JSON.stringify(msg) });
    const first = await spawnCollector(dir, ['--flush-interval-ms', '3600000']);
    assert.equal((await send(first.url)).status, 200);
    first.proc.kill('SIGKILL'); // never shipped: the message is only in the log
    await first.exited;
    assert.deepEqual(await store.list('tracks/'), []);
    const second = await spawnCollector(dir, ['--flush-interval-ms', '3600000']);
    assert.equal((await send(second.url)).status, 200);
    second.proc.kill('SIGTERM');
    await second.exited;
    const rows = (await readRows(store)).filter((r) => r.correlationid === 'logged-dup');
    assert.equal(rows.length, 1);
  });
});
