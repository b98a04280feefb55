/** Observed schemas on the request thread (merging workers' counts, writing them through storage failures), and drafts from them. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { inferPlan } from '../src/plan/infer.js';
import { ObservationCounter, readSchemas, SchemaRecorder, schemaKey, type EventShape } from '../src/plan/observe.js';
import { parsePlan } from '../src/plan/plan.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { storeOver, tempDir } from './helpers.js';

/** A store whose next `n` gets fail, as an unreachable bucket does. */
function flaky(store: ObjectStore): ObjectStore & { failGets: number } {
  const s: ObjectStore & { failGets: number } = {
    ...storeOver(store, {
      get: async (key) => {
        if (s.failGets > 0) {
          s.failGets--;
          throw new Error('injected: storage unreachable');
        }
        return store.get(key);
      },
    }),
    failGets: 0,
  };
  return s;
}

const counts = (day: string, event: string, n: number) => {
  const c = new ObservationCounter();
  for (let i = 0; i < n; i++) c.observe(day, 'acme', event, { id: 'x' });
  return c.take();
};

describe('observed schemas', () => {
  it('keeps counts through a failed read and merges with what a previous run stored', async () => {
    const local = new LocalStore(path.join(tempDir('observe'), 'data'));
    const first = new SchemaRecorder(local, 'n1');
    first.add(counts('2026-03-15', 'call started', 2));
    await first.flush();

    const store = flaky(local);
    const second = new SchemaRecorder(store, 'n1');
    second.add(counts('2026-03-15', 'call started', 3));
    store.failGets = 1;
    await assert.rejects(second.flush(), /injected/);
    await second.flush();
    const { files } = await readSchemas(local, ['2026-03-15']);
    assert.deepEqual(files.map((f) => f.events['call started']), [{ count: 5, properties: { id: { string: 5 } } }]);
  });

  it('starts again over a stored file that is not one, and lint and infer skip such files by name', async () => {
    const store = new LocalStore(path.join(tempDir('observe'), 'data'));
    await store.put(schemaKey('2026-03-15', 'acme', 'n1'), 'not json');
    await store.put(schemaKey('2026-03-15', 'acme', 'n2'), '{"version": 1');
    const r = new SchemaRecorder(store, 'n1');
    r.add(counts('2026-03-15', 'call started', 1));
    await r.flush();
    const { files, unreadable } = await readSchemas(store, ['2026-03-15'], 'acme');
    assert.deepEqual(files.map((f) => f.events['call started']!.count), [1]);
    assert.deepEqual(unreadable, [schemaKey('2026-03-15', 'acme', 'n2')]);
  });
});

describe('plan infer', () => {
  it('drafts types and required properties from counts, without forbidden properties, marking names to fix', () => {
    const events = new Map<string, EventShape>([
      ['call started', { count: 3, properties: { episode_id: { string: 3 }, n: { integer: 2, number: 1 }, note: { string: 1, null: 2 }, channel_id: { string: 3 } } }],
      ['Call Ended', { count: 1, properties: {} }],
      ['$identify', { count: 2, properties: { user_type: { string: 2 } } }],
    ]);
    events.set('order completed', {
      count: 2,
      properties: {
        products: { array: 2 },
        'products[]': { object: 2 },
        'products[].product_id': { string: 2 },
        'products[].quantity': { integer: 1 },
        meta: { object: 1, null: 1 },
        'meta.source': { string: 1 },
      },
    });
    const text = inferPlan({ tenant: 'acme', from: '2026-03-01', to: '2026-03-15', events });
    const plan = parsePlan(text, 'draft.yaml').plan;
    assert.deepEqual(plan.events.map((e) => e.name), ['Call Ended', 'call started', 'order completed']);
    // One level down: an order's products as an array of objects, a nested object that may be null.
    assert.deepEqual(plan.events[2]!.properties, {
      type: 'object',
      required: ['products'],
      properties: {
        meta: { type: ['object', 'null'], required: ['source'], properties: { source: { type: 'string' } } },
        products: { type: 'array', items: { type: 'object', required: ['product_id'], properties: { product_id: { type: 'string' }, quantity: { type: 'integer' } } } },
      },
    });
    assert.deepEqual(plan.events[1]!.properties, { type: 'object', required: ['episode_id', 'n'], properties: { episode_id: { type: 'string' }, n: { type: 'number' }, note: { type: ['string', 'null'] } } });
    assert.deepEqual(plan.identify?.traits, { type: 'object', required: ['user_type'], properties: { user_type: { type: 'string' } } });
    assert.deepEqual(plan.conventions.forbiddenProperties, { channel_id: 'episode_id' });
    assert.match(text, /# Breaks the naming conventions.*\n {2}- name: Call Ended/);
    assert.doesNotMatch(text, /# Breaks the naming conventions.*\n {2}- name: call started/);
  });
});
