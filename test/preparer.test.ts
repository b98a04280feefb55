import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Worker } from 'node:worker_threads';
import type { RawRequest } from '../src/ingest/prepare.js';
import { InlinePreparer, WorkerPool } from '../src/ingest/preparer.js';
import { silent, T0 } from './helpers.js';

const settings = { sources: { dev: 'demo' }, events: {} };
const request = (body: unknown): RawRequest => ({ body: Buffer.from(JSON.stringify(body)), basicKey: 'dev', pathType: 'batch', clientIp: '127.0.0.1', receivedAt: T0 });
const batch = { batch: [{ type: 'track', event: 'Product Viewed', anonymousId: 'd1', messageId: 'm1', properties: { product_id: 'p' } }, { type: 'track', anonymousId: 'd1' }] };

describe('request preparation', () => {
  it('gives the same answer on a worker thread as on the request thread', async () => {
    const pool = new WorkerPool(settings, 2, silent);
    try {
      const inline = await new InlinePreparer(settings).prepare(request(batch));
      const threaded = await pool.prepare(request(batch));
      assert.ok(inline.ok && threaded.ok);
      const { release, ...value } = threaded.value;
      assert.deepEqual({ ...value, frame: Buffer.from(value.frame) }, { ...inline.value, frame: Buffer.from(inline.value.frame) });
      assert.ok(value.frame.buffer instanceof SharedArrayBuffer, 'the frame is lent from the worker\'s ring');
      release?.();
      assert.deepEqual(threaded.value.rejected.map((r) => r.code), ['missing_event']);
    } finally {
      await pool.close();
    }
  });

  it('keeps every frame lent to the request thread intact until it is released', async () => {
    const pool = new WorkerPool(settings, 1, silent);
    const inline = new InlinePreparer(settings);
    try {
      // 3 000 requests of 50 events (45 MB of frames): more than the ring holds, all in flight at once.
      const bodies = Array.from({ length: 3000 }, (_, r) => ({ batch: Array.from({ length: 50 }, (_, i) => ({ ...batch.batch[0]!, messageId: `m${r}-${i}`, properties: { product_id: `p${r}-${i}-${'x'.repeat(200)}` } })) }));
      const held = await Promise.all(bodies.map((b) => pool.prepare(request(b))));
      const lent = held.filter((r) => r.ok && r.value.frame.buffer instanceof SharedArrayBuffer).length;
      assert.ok(lent > 500 && lent < 3000, `the ring lends what it holds and no more (${lent})`);
      for (let i = 0; i < held.length; i++) {
        const expected = await inline.prepare(request(bodies[i]!));
        const h = held[i]!;
        assert.ok(h.ok && expected.ok);
        assert.ok(Buffer.from(h.value.frame).equals(Buffer.from(expected.value.frame)), `frame ${i} is intact`);
      }
      for (const r of held) if (r.ok) r.value.release?.();
      // Released, the ring is lent again.
      const after = await pool.prepare(request(batch));
      assert.ok(after.ok && after.value.frame.buffer instanceof SharedArrayBuffer);
      after.value.release?.();
    } finally {
      await pool.close();
    }
  });

  it('fails the requests of a worker that dies, and goes on with a new one', async () => {
    const pool = new WorkerPool(settings, 1, silent);
    try {
      await pool.prepare(request(batch)); // the worker is up
      const worker = (pool as unknown as { slots: Array<{ worker: Worker }> }).slots[0]!.worker;
      // A batch that takes the worker milliseconds to prepare: terminate() stops the thread long before it
      // could answer. (With a small one the worker sometimes answered first, and the test then waited on
      // an idle, unreferenced worker until node:test cancelled it.)
      const big = { batch: Array.from({ length: 2000 }, (_, i) => ({ ...batch.batch[0]!, messageId: `m${i}` })) };
      const pending = pool.prepare(request(big));
      await worker.terminate();
      await assert.rejects(pending, /exited/);
      const after = await pool.prepare(request(batch));
      assert.equal(after.ok, true);
    } finally {
      await pool.close();
    }
  });
});
