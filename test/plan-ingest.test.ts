/**
 * Tracking plans at the door: a tenant's plan checks every message in the request workers, violations and
 * blocked messages land exactly once beside the tracking files, and a bad plan stops start-up.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { VIOLATION_COLUMNS, parseQuarantineLine } from '../src/plan/files.js';
import type { SchemaFile } from '../src/plan/observe.js';
import { LocalStore } from '../src/storage/local.js';
import { basic, post, readRows, spawnCollector, startCollector, T0, tempDir, track } from './helpers.js';
import { MIXED, PLAN, quarantined, writePlan } from './plan-fixture.js';

const at = new Date(T0 - 60_000).toISOString();

describe('a tenant with a tracking plan', () => {
  it('lands the good events, blocks and omits as configured, and records every violation once', async () => {
    const dir = tempDir('plan-ingest');
    const c = await startCollector({ plans: { demo: await writePlan(dir) } }, { dir });
    try {
      const res = await post(`${c.url}/v1/batch`, { batch: MIXED });
      assert.equal(res.status, 200, res.text);
      // Blocked events are acknowledged: the client did nothing wrong at the protocol level.
      assert.deepEqual(res.json.rejected.map((r: { messageId: string }) => r.messageId), ['no-event']);
      // A retry of the whole batch is all duplicates: nothing is written or counted twice.
      assert.equal((await post(`${c.url}/v1/batch`, { batch: MIXED })).status, 200);
      await c.node.shipper.flush();

      const tracks = await readRows(c.store);
      assert.deepEqual(tracks.map((r) => `${r.event} ${r.productid} ${r.merchantid}`).sort(), ['share p3 ', 'view p1 ', 'view p2 '], 'omit dropped merchant_id; blocked events stayed out');

      const files = (await c.store.list('violations/')).map((o) => o.key);
      assert.ok(files.every((k) => /^violations\/2026\/03\/15\/[A-Za-z0-9_-]+-\d{12}\.csv$/.test(k)), files.join());
      const text = (await c.store.get(files[0]!))!.toString('utf8');
      assert.equal(text.split('\n')[0], VIOLATION_COLUMNS.join(','));
      const rows = await readRows(c.store, 'violations/');
      assert.deepEqual(
        rows.map((r) => `${r.messageid} ${r.type} ${r.field} ${r.action}`).sort(),
        [
          'misnamed Naming-Convention event allow',
          'misnamed Unplanned-Event event allow',
          'missing Required-Missing properties.product_id block',
          'mistyped Datatype-Mismatch properties.product_id block',
          'omitted Additional-Properties properties.merchant_id omit',
        ],
      );
      assert.ok(rows.every((r) => r.tenantid === 'demo' && r.time === String(T0 - 60_000)));
      assert.equal(rows.find((r) => r.messageid === 'misnamed')!.event, 'Product Shared');

      const q = (await quarantined(c.store)).map(parseQuarantineLine);
      assert.deepEqual(q.map((e) => e.messageId).sort(), ['missing', 'mistyped']);
      const mistyped = q.find((e) => e.messageId === 'mistyped')!;
      assert.deepEqual(mistyped.message, MIXED[4], 'the message is kept whole, as received');
      assert.equal(mistyped.tenant, 'demo');
      assert.equal(mistyped.receivedAt, T0);
      assert.deepEqual(mistyped.violations.map((v) => v.type), ['Datatype-Mismatch']);

      const metrics = await (await fetch(`${c.url}/metrics`)).text();
      assert.match(metrics, /tracklake_plan_violations_total\{tenant="demo",type="Required-Missing",action="block"\} 1\n/);
      assert.match(metrics, /tracklake_plan_violations_total\{tenant="demo",type="Naming-Convention",action="allow"\} 1\n/);
      assert.match(metrics, /tracklake_plan_violations_total\{tenant="demo",type="Additional-Properties",action="omit"\} 1\n/);
    } finally {
      await c.close();
    }
  });

  it('blocks a forbidden property, or drops it, as the plan says; other tenants are unchecked', async () => {
    const dir = tempDir('plan-modes');
    const blocking = await writePlan(dir, PLAN.replace('Forbidden-Property: omit', 'Forbidden-Property: block'), 'block.yaml');
    const c = await startCollector({ sources: { dev: 'demo', other: 'free' }, plans: { demo: blocking } }, { dir });
    try {
      const msg = (id: string) => track({ messageId: id, event: 'call started', properties: { episode_id: 'e1', channel_id: 'e1' }, timestamp: at });
      assert.equal((await post(`${c.url}/v1/track`, msg('a'))).status, 200);
      assert.equal((await post(`${c.url}/v1/track`, msg('b'), { authorization: basic('other') })).status, 200);
      await c.node.shipper.flush();
      assert.deepEqual((await readRows(c.store)).map((r) => r.tenantid), ['free']);
      assert.deepEqual((await quarantined(c.store)).map((l) => parseQuarantineLine(l).messageId), ['a']);
      assert.deepEqual((await readRows(c.store, 'violations/')).map((r) => `${r.type} ${r.action}`), ['Forbidden-Property block']);
    } finally {
      await c.close();
    }
  });

  it('keeps observed schemas per day, tenant and event: property types and counts', async () => {
    const dir = tempDir('plan-schemas');
    const c = await startCollector({}, { dir });
    await post(`${c.url}/v1/batch`, {
      batch: [
        track({ event: 'call started', properties: { episode_id: 'e1', n: 1 } }),
        track({ event: 'call started', properties: { episode_id: 7, n: 1.5, tags: ['a'] } }),
        { type: 'identify', userId: 'u1', traits: { user_type: 'patient' } },
      ],
    });
    // Names are data: never an object's prototype or inherited members (raw JSON: a literal's __proto__ is not a key).
    await post(`${c.url}/v1/track`, '{"event":"__proto__","anonymousId":"d1","properties":{"constructor":1,"__proto__":"x"}}');
    await c.close();
    const files = await c.store.list('schemas/');
    assert.deepEqual(files.map((o) => o.key.replace(/[^/]+\.json$/, 'NODE.json')), ['schemas/2026/03/15/demo/NODE.json']);
    const file = JSON.parse((await c.store.get(files[0]!.key))!.toString('utf8')) as SchemaFile;
    assert.deepEqual(file.events['call started'], { count: 2, properties: { episode_id: { string: 1, integer: 1 }, n: { integer: 1, number: 1 }, tags: { array: 1 }, 'tags[]': { string: 1 } } });
    assert.deepEqual(file.events.$identify, { count: 1, properties: { user_type: { string: 1 } } });
    assert.ok(Object.hasOwn(file.events, '__proto__'));
    assert.equal(JSON.stringify(Object.getOwnPropertyDescriptor(file.events, '__proto__')!.value), '{"count":1,"properties":{"constructor":{"integer":1},"__proto__":{"string":1}}}');
    assert.equal(({} as Record<string, unknown>).count, undefined, 'Object.prototype untouched');
  });
});

describe('plans at start-up', () => {
  it('refuses a plan that does not parse, is not valid, or names an unknown tenant (exit 2, naming the place)', async () => {
    const dir = tempDir('plan-start');
    const cases: Array<[string, RegExp]> = [
      ['version: 1\nevents: [\n', /plan\.yaml at line \d+, column \d+/],
      ['version: 1\nevents:\n  - name: a b\n    propertys: {}\n', /plan\.yaml at events\.0 \(line 3\): Unrecognized key: "propertys"/],
      ['version: 1\nenforcement:\n  Unplanned-Event: reject\n', /enforcement\.Unplanned-Event/],
    ];
    for (const [text, expected] of cases) {
      const file = await writePlan(dir, text);
      const child = await spawnCollector(dir, ['--plans', `demo=${file}`], { TRACKLAKE_SOURCES: 'dev=demo' }).catch((e: Error) => e);
      assert.ok(child instanceof Error, 'the collector started with a bad plan');
      assert.match(child.message, /exited 2/);
      assert.match(child.message, /invalid setting "plans\.demo"/);
      assert.match(child.message, expected);
    }
    const file = await writePlan(dir);
    const unknown = await spawnCollector(dir, ['--plans', `nobody=${file}`]).catch((e: Error) => e);
    assert.ok(unknown instanceof Error && /exited 2/.test(unknown.message) && /no source sends to tenant "nobody"/.test(unknown.message), String(unknown));
  });

  it('applies a changed plan from the next start on', async () => {
    const dir = tempDir('plan-change');
    const lenient = await writePlan(dir, 'version: 1\n', 'lenient.yaml');
    const strict = await writePlan(dir, 'version: 1\nenforcement: { Unplanned-Event: block }\n', 'strict.yaml');
    const store = new LocalStore(path.join(dir, 'data'));
    for (const [plan, id] of [[lenient, 'first'], [strict, 'second']] as const) {
      const c = await startCollector({ plans: { demo: plan } }, { dir, store });
      await post(`${c.url}/v1/track`, track({ messageId: id, event: 'thing happened', properties: { correlation_id: id } }));
      await c.close();
    }
    assert.deepEqual((await readRows(store)).map((r) => r.correlationid), ['first']);
    assert.deepEqual((await quarantined(store)).map((l) => parseQuarantineLine(l).messageId), ['second']);
    assert.deepEqual((await readRows(store, 'violations/')).map((r) => `${r.messageid} ${r.action}`).sort(), ['first allow', 'second block']);
  });
});

describe('plans reloaded on SIGHUP', () => {
  it('put an edited plan in force without a restart, and keep the plan in force when the edit is bad', async () => {
    const dir = tempDir('plan-reload');
    const file = await writePlan(dir, 'version: 1\n');
    const child = await spawnCollector(dir, ['--plans', `demo=${file}`, '--flush-interval-ms', '3600000']);
    const send = async (id: string) => assert.equal((await post(`${child.url}/v1/track`, track({ messageId: id, event: 'thing happened', properties: { correlation_id: id } }))).status, 200);
    const logged = async (text: string, times: number) => {
      for (let i = 0; i < 200 && child.stdout().split(text).length - 1 < times; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(child.stdout().split(text).length - 1, times, child.stdout());
    };
    await send('before');
    await fs.writeFile(file, 'version: 1\nenforcement: { Unplanned-Event: block }\n');
    child.proc.kill('SIGHUP');
    await logged('"msg":"tracking plans reloaded"', 1);
    await send('after');
    await fs.writeFile(file, 'version: 1\nenforcement: { Unplanned-Event: rejct }\n');
    child.proc.kill('SIGHUP');
    await logged('"msg":"tracking plans not reloaded: the plans in force stay"', 1);
    assert.match(child.stdout(), /enforcement\.Unplanned-Event \(line 2\)/);
    await send('after-bad-edit');
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0, child.stderr());
    const store = new LocalStore(path.join(dir, 'data'));
    assert.deepEqual((await readRows(store)).map((r) => r.correlationid), ['before']);
    assert.deepEqual((await quarantined(store)).map((l) => parseQuarantineLine(l).messageId).sort(), ['after', 'after-bad-edit']);
  });
});

describe('a collector killed with SIGKILL after acknowledging a blocked event', () => {
  it('has it in quarantine exactly once after the restart', async () => {
    const dir = tempDir('plan-crash');
    const file = await writePlan(dir);
    const flags = ['--plans', `demo=${file}`, '--flush-interval-ms', '3600000', '--node-id', 'qnode'];
    const first = await spawnCollector(dir, flags);
    const blocked = track({ messageId: 'blocked-1', event: 'product viewed', properties: {} });
    const res = await post(`${first.url}/v1/track`, blocked);
    assert.equal(res.status, 200, res.text);
    first.proc.kill('SIGKILL');
    await first.exited;
    const store = new LocalStore(path.join(dir, 'data'));
    assert.deepEqual(await quarantined(store), [], 'nothing was shipped before the kill');

    const second = await spawnCollector(dir, flags);
    // The client retries (it never knew); the retry is a duplicate of the logged original.
    assert.equal((await post(`${second.url}/v1/track`, blocked)).status, 200);
    second.proc.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.stderr());
    const lines = await quarantined(store);
    assert.equal(lines.length, 1);
    assert.equal(parseQuarantineLine(lines[0]!).messageId, 'blocked-1');
    assert.equal((await readRows(store, 'violations/')).length, 1);
    assert.deepEqual(await readRows(store), []);
  });
});
