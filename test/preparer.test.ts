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
      assert.deepEqual({ ...threaded.value, frame: Buffer.from(threaded.value.frame) }, { ...inline.value, frame: Buffer.from(inline.value.frame) });
      assert.deepEqual(threaded.value.rejected.map((r) => r.code), ['missing_event']);
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
