/**
 * Tracking plans over stored files: replay (once, idempotent, after a crash), report, lint's findings on a
 * history with known problems, infer → check → enforce on simulated traffic, and typegen's output compiled
 * by tsc.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { simulate } from '../src/cli/simulate.js';
import { parseQuarantineLine } from '../src/plan/files.js';
import { lintHistory, lintNames, type Finding } from '../src/plan/lint.js';
import { loadPlan, parsePlan } from '../src/plan/plan.js';
import { replayQuarantine } from '../src/plan/replay.js';
import { violationReport } from '../src/plan/report.js';
import { LocalStore } from '../src/storage/local.js';
import type { ObjectStore } from '../src/storage/store.js';
import { TRACK_COLUMNS } from '../src/tracking/columns.js';
import { CLI, post, readRows, startCollector, storeOver, T0, tempDir, track } from './helpers.js';
import { MIXED, PLAN, quarantined, writePlan } from './plan-fixture.js';
import { TestS3 } from './s3server.js';

const DAY = '2026-03-15';
const days = [DAY];
const resources = { memoryLimitBytes: 256 * 2 ** 20 };

/** A store whose puts of replay objects fail the first `n` times: a crash in the middle of a replay. */
function failingReplays(store: ObjectStore, n: number): ObjectStore {
  let left = n;
  return storeOver(store, {
    put: async (key, body) => {
      if (key.includes('-replay-') && left-- > 0) throw new Error('injected: storage went away');
      return store.put(key, body);
    },
  });
}

/** Runs the CLI; returns its exit code and output. */
function cli(args: string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('plan replay', () => {
  it('lets in what passes the current plan, once, even across a crash and re-runs', async () => {
    const dir = tempDir('plan-replay');
    const c = await startCollector({ plans: { demo: await writePlan(dir) } }, { dir });
    await post(`${c.url}/v1/batch`, { batch: MIXED });
    await c.close();
    const store = c.store;
    const before = await readRows(store);
    assert.equal(before.length, 3);

    // The team loosens the plan: a missing product_id is allowed now; a mistyped one is still blocked.
    const loosened = parsePlan(PLAN.replace('Required-Missing: block', 'Required-Missing: allow'));
    const plans = new Map([['demo', loosened]]);
    await assert.rejects(replayQuarantine({ store: failingReplays(store, 1), plans, events: {}, days }), /injected/);
    const r1 = await replayQuarantine({ store, plans, events: {}, days });
    assert.deepEqual({ replayed: r1.replayed, stillBlocked: r1.stillBlocked, unusable: r1.unusable }, { replayed: 1, stillBlocked: 1, unusable: [] });
    assert.ok(r1.written.every((k) => /^tracks\/2026\/03\/15\/.+-replay-0\.csv$/.test(k)), r1.written.join());
    const after = await readRows(store);
    assert.equal(after.length, 4, 'the replayed message is in the tracking files once');
    const replayed = after.find((r) => r.productid === '');
    assert.equal(replayed?.time, String(T0 - 60_000), 'mapped as the collector would have, at its own time');

    const snapshot = async () => Promise.all((await store.list('tracks/')).map(async (o) => `${o.key}:${(await store.get(o.key))!.toString('utf8')}`));
    const files = await snapshot();
    const r2 = await replayQuarantine({ store, plans, events: {}, days });
    assert.deepEqual({ replayed: r2.replayed, checked: r2.checked }, { replayed: 0, checked: 1 }, 'a re-run looks only at what is still blocked');
    assert.deepEqual(await snapshot(), files, 'and writes nothing new');

    // Without a plan the tenant is unchecked: the last one passes too, and only it.
    const r3 = await replayQuarantine({ store, plans: new Map(), events: {}, days });
    assert.equal(r3.replayed, 1);
    assert.equal((await readRows(store)).length, 5);
    assert.equal((await quarantined(store)).length, 2, 'quarantine keeps what it had');
  });

  it('runs from the command line over the configured plans', async () => {
    const dir = tempDir('plan-replay-cli');
    const c = await startCollector({ plans: { demo: await writePlan(dir) } }, { dir });
    await post(`${c.url}/v1/batch`, { batch: MIXED });
    await c.close();
    const lenient = await writePlan(dir, 'version: 1\n', 'lenient.yaml');
    const args = ['plan', 'replay', '--storage', c.config.storage, '--plans', `demo=${lenient}`, '--from', DAY, '--to', DAY];
    const r = cli(args, dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /2 quarantined messages checked in 1 file: 2 replayed/);
    assert.match(cli(args, dir).stdout, /0 quarantined messages checked in 1 file: 0 replayed/);
    assert.equal((await readRows(c.store)).length, 5);
  });
});

describe('plan report', () => {
  it('counts violations per event and type, with the actions taken and a sample', async () => {
    const dir = tempDir('plan-report');
    const c = await startCollector({ plans: { demo: await writePlan(dir) } }, { dir });
    await post(`${c.url}/v1/batch`, { batch: [...MIXED, track({ messageId: 'missing-2', event: 'product viewed', properties: {}, timestamp: new Date(T0 - 30_000).toISOString() })] });
    await c.close();
    const { rows } = await violationReport(c.store, resources, days);
    const missing = rows.find((r) => r.type === 'Required-Missing')!;
    assert.deepEqual({ event: missing.event, count: missing.count, actions: missing.actions }, { event: 'product viewed', count: 2, actions: { block: 2 } });
    assert.deepEqual(missing.sample, { messageId: 'missing', field: 'properties.product_id', message: "must have required property 'product_id'" });
    assert.deepEqual(rows.map((r) => `${r.event}/${r.type}/${r.count}`).sort(), ['Product Shared/Naming-Convention/1', 'Product Shared/Unplanned-Event/1', 'product viewed/Additional-Properties/1', 'product viewed/Datatype-Mismatch/1', 'product viewed/Required-Missing/2']);
    const text = cli(['plan', 'report', '--storage', c.config.storage, '--from', DAY, '--to', DAY, '--tenant', 'demo'], dir);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /\n\s+2  Required-Missing\s+"product viewed" \(block 2\)\n\s+e\.g\. missing: properties\.product_id: must have required property 'product_id'\n/);
  });
});

describe('plan lint', () => {
  const byKind = (fs_: Finding[], kind: string) => fs_.filter((f) => f.kind === kind).map((f) => `${f.event}:${f.count}`).sort();

  it('finds every kind of drift in a history with known problems', async () => {
    const dir = tempDir('plan-lint');
    const c = await startCollector({}, { dir });
    const sent: Array<[string, number, Record<string, unknown>?]> = [
      ['call started', 3],
      ['Call Started', 2],
      ['call_started', 1],
      ['call ended', 1],
      ['call ended by patient', 2],
      ['call ended early', 1],
      ['call ended late', 1],
      ['startCall', 1],
      ['call started', 1, { channel_id: 'x' }],
    ];
    let n = 0;
    const batch = sent.flatMap(([event, times, props]) => Array.from({ length: times }, () => track({ messageId: `m${n++}`, event, properties: { episode_id: 'e1', ...props } })));
    assert.equal((await post(`${c.url}/v1/batch`, { batch })).status, 200);
    await c.close();
    // A day from before schemas were kept: only its tracking file knows its names.
    const older = `${TRACK_COLUMNS.join(',')}\n${T0 - 86_400_000},demo,,d1,,,,,signup,,,,,,false,,,,DESKTOP,DIRECT\n${T0 - 86_400_000},demo,,d1,,,,,view,,,,,,false,,,,DESKTOP,DIRECT\n`;
    await c.store.put('tracks/2026/03/14/old-000000000001.csv', older);

    const plan = parsePlan('version: 1\nevents: [{ name: call started }, { name: call ended }]\nconventions: { forbiddenProperties: { channel_id: episode_id } }\n');
    const { findings } = await lintHistory({ store: c.store, resources, plans: new Map([['demo', plan]]), events: {}, days: ['2026-03-14', DAY] });
    assert.deepEqual(byKind(findings, 'naming'), ['Call Started:2', 'call ended by patient:2', 'call ended early:1', 'call ended late:1', 'call_started:1', 'signup:1', 'startCall:1']);
    const variants = findings.find((f) => f.kind === 'variants')!;
    assert.deepEqual(variants.names, [{ name: 'call started', count: 4 }, { name: 'Call Started', count: 2 }, { name: 'call_started', count: 1 }]);
    assert.deepEqual(byKind(findings, 'flatten'), ['call ended by patient:2']);
    const family = findings.find((f) => f.kind === 'family')!;
    assert.deepEqual([family.event, family.names!.map((x) => x.name)], ['call ended', ['call ended', 'call ended by patient', 'call ended early', 'call ended late']]);
    assert.deepEqual(byKind(findings, 'forbidden'), ['call started:1']);
    assert.deepEqual(byKind(findings, 'unplanned'), ['Call Started:2', 'call ended by patient:2', 'call ended early:1', 'call ended late:1', 'call_started:1', 'signup:1', 'startCall:1']);
    assert.ok(!findings.some((f) => f.event === 'view'), 'canonical names are tracklake\'s, not the team\'s');

    // The command: exit 1 with findings (a CI gate), text or JSON; exit 0 over a clean range.
    const planFile = await writePlan(dir, 'version: 1\nevents: [{ name: call started }, { name: call ended }]\n');
    const args = ['plan', 'lint', '--storage', c.config.storage, '--plans', `demo=${planFile}`, '--from', '2026-03-14', '--to', DAY];
    const text = cli(args, dir);
    assert.equal(text.status, 1, text.stderr);
    assert.match(text.stdout, /tenant demo\n\s+naming\s+2  "Call Started": not an Object-Action name/);
    const json = cli([...args, '--json'], dir);
    assert.equal(json.status, 1);
    assert.ok((JSON.parse(json.stdout) as { findings: Finding[] }).findings.some((f) => f.kind === 'family'));
    const clean = cli(['plan', 'lint', '--storage', c.config.storage, '--from', '2026-03-10', '--to', '2026-03-12'], dir);
    assert.equal(clean.status, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /0 event names, no findings/);
  });

  it('finds nothing in names that follow the conventions', () => {
    const counts = new Map([['user signed up', 3], ['call started', 2], ['call ended', 1]]);
    assert.deepEqual(lintNames('t', counts, new Map(), parsePlan('version: 1\n'), false), []);
  });
});

describe('plan infer → check → enforce', () => {
  it('drafts a plan from simulated traffic that the same traffic passes, and blocks convention-breaking traffic', async () => {
    const dir = tempDir('plan-infer');
    const store = new LocalStore(path.join(dir, 'data'));
    const sim = (url: string, seed: number, planViolations = 0) =>
      simulate({ url, writeKey: 'dev', events: 400, days: 1, batchSize: 50, concurrency: 2, seed, endMs: T0, planViolations }, { write: () => true } as unknown as NodeJS.WritableStream);
    const first = await startCollector({}, { dir, store });
    assert.equal((await sim(first.url, 1)).failed, 0);
    await first.close();

    const draft = path.join(dir, 'draft.yaml');
    const inferred = cli(['plan', 'infer', '--storage', path.join(dir, 'data'), '--tenant', 'demo', '--out', draft], dir);
    assert.equal(inferred.status, 0, inferred.stderr);
    const checked = cli(['plan', 'check', draft], dir);
    assert.equal(checked.status, 0, checked.stderr);
    const plan = loadPlan(draft);
    assert.deepEqual(plan.plan.events.map((e) => e.name), ['chat started', 'order completed', 'product shared', 'product viewed']);
    assert.deepEqual((plan.plan.events.find((e) => e.name === 'product viewed')!.properties as { required: string[] }).required, ['impressions', 'merchant_id', 'price', 'product_id']);

    // Enforce it: block unplanned events and wrong types.
    const enforced = (await fs.readFile(draft, 'utf8')).replace('enforcement: {}', 'enforcement:\n  Unplanned-Event: block\n  Datatype-Mismatch: block\n  Required-Missing: block\n  Forbidden-Property: omit');
    const planFile = await writePlan(dir, enforced, 'enforced.yaml');
    const second = await startCollector({ plans: { demo: planFile } }, { dir, store });
    assert.equal((await sim(second.url, 2)).failed, 0);
    await second.node.shipper.flush();
    assert.deepEqual(await readRows(store, 'violations/'), [], 'traffic like the one the plan was drawn from passes');
    assert.equal((await sim(second.url, 3, 0.3)).failed, 0);
    await second.close();
    const blocked = (await quarantined(store)).map(parseQuarantineLine);
    assert.ok(blocked.length > 10, `only ${blocked.length} blocked`);
    const planned = new Set(plan.plan.events.map((e) => e.name));
    for (const e of blocked) {
      const m = e.message as { event: string; properties: { price?: unknown } };
      assert.ok(!planned.has(m.event) || typeof m.properties.price === 'string', JSON.stringify(m));
    }
    const violations = await readRows(store, 'violations/');
    assert.ok(violations.some((v) => v.type === 'Forbidden-Property' && v.action !== 'block'));
  });
});

describe('tracking plans on S3', () => {
  let s3: TestS3;
  before(async () => (s3 = await TestS3.start()));
  after(() => s3.down());

  it('land violations, quarantine and schemas in the bucket, and report, lint and replay read them there', async () => {
    const dir = tempDir('plan-s3');
    const store = s3.store('plans');
    const c = await startCollector({ plans: { demo: await writePlan(dir) } }, { dir, store });
    await post(`${c.url}/v1/batch`, { batch: MIXED });
    await c.close();
    assert.equal((await quarantined(store)).length, 2);
    assert.equal((await readRows(store, 'violations/')).length, 5);
    assert.equal((await store.list('schemas/2026/03/15/demo/')).length, 1);

    const { rows } = await violationReport(store, resources, days);
    assert.equal(rows.reduce((n, r) => n + r.count, 0), 5);
    const { findings } = await lintHistory({ store, resources, plans: new Map([['demo', parsePlan(PLAN)]]), events: {}, days });
    assert.deepEqual(findings.map((f) => `${f.kind} ${f.event}`).sort(), ['naming Product Shared', 'unplanned Product Shared']);
    const loosened = parsePlan(PLAN.replace('Required-Missing: block', 'Required-Missing: allow'));
    assert.equal((await replayQuarantine({ store, plans: new Map([['demo', loosened]]), events: {}, days })).replayed, 1);
    assert.equal((await replayQuarantine({ store, plans: new Map([['demo', loosened]]), events: {}, days })).replayed, 0);
    assert.equal((await readRows(store)).length, 4);
  });
});

describe('plan commands with bad flags', () => {
  it('exit 2 naming the setting', () => {
    const dir = tempDir('plan-flags');
    const cases: Array<[string[], RegExp]> = [
      [['plan', 'lint', '--from', '2026-13-01', '--to', '2026-03-02'], /invalid setting "from": "2026-13-01" is not a date/],
      [['plan', 'report', '--from', '2026-03-02', '--to', '2026-03-01'], /invalid setting "from": --from 2026-03-02 is after --to/],
      [['plan', 'replay', '--from', '2026-03-01', '--to', '2026-03-01', '--plans', 'demo'], /invalid setting "--plans": "demo" is not tenant=file/],
      [['plan', 'typegen', 'x.yaml', '--lang', 'py'], /invalid setting "lang"/],
      [['plan', 'typegen', 'x.yaml', '--client', 'phone'], /invalid setting "client"/],
      [['plan', 'typegen', '--tenant', 'demo'], /invalid setting "tenant": tenant "demo" has no plan/],
      [['plan', 'typegen', path.join(dir, 'missing.yaml')], /invalid setting "plan": tracking plan .*missing\.yaml: cannot read it/],
      [['simulate', '--plan-violations', '1.5'], /invalid setting "plan-violations": "1\.5" is not a share/],
    ];
    for (const [args, expected] of cases) {
      const r = cli(args, dir);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, expected);
    }
  });
});

describe('plan typegen', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const example = path.join(root, 'plans/example.yaml');
  const compile = (dir: string, file: string) =>
    spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--esModuleInterop', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', file], { cwd: dir, encoding: 'utf8' });
  // The real SDKs' clients, as their READMEs make them.
  const CLIENTS = {
    browser: [
      "import { AnalyticsBrowser } from '@segment/analytics-next';",
      "import { RudderAnalytics } from '@rudderstack/analytics-js';",
      "const segment = AnalyticsBrowser.load({ writeKey: 'dev', cdnURL: 'http://127.0.0.1:8080' });",
      'const rudder = new RudderAnalytics();',
    ],
    node: [
      "import { Analytics } from '@segment/analytics-node';",
      "import RudderNode from '@rudderstack/rudder-sdk-node';",
      "const segment = new Analytics({ writeKey: 'dev', host: 'http://127.0.0.1:8080' });",
      "const rudder = new RudderNode('dev', { dataPlaneUrl: 'http://127.0.0.1:8080' });",
    ],
  };

  for (const client of ['browser', 'node'] as const) {
    it(`writes a module tsc accepts with the real ${client} SDKs, and whose types catch mistakes`, async () => {
      const dir = tempDir('typegen');
      await fs.symlink(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
      const r = cli(['plan', 'typegen', example, '--lang', 'ts', '--client', client, '--out', path.join(dir, 'tracking.ts')], dir);
      assert.equal(r.status, 0, r.stderr);
      const head = ["import { callStarted, callEnded, userSignedUp } from './tracking.js';", ...CLIENTS[client]];
      const good = client === 'browser'
        ? ["callStarted(segment, { episode_id: 'e1', call_id: 'c1' });", "callEnded(rudder, { episode_id: 'e1', call_id: 'c1', type: 'ended_by_patient', duration_seconds: 3 });", "userSignedUp(segment, { user_type: 'patient' });"]
        : ["callStarted(segment, { userId: 'u1' }, { episode_id: 'e1', call_id: 'c1' });", "callEnded(rudder, { anonymousId: 'a1' }, { episode_id: 'e1', call_id: 'c1', type: 'dropped' });", "userSignedUp(segment, { userId: 'u1' }, { user_type: 'patient' });"];
      await fs.writeFile(path.join(dir, 'good.ts'), [...head, ...good, ''].join('\n'));
      const ok = compile(dir, 'good.ts');
      assert.equal(ok.status, 0, ok.stdout);
      // One mistake per line: a missing required property, a value outside the enum, a misspelt event, a
      // wrong type; (node) a call with no identity.
      const bad = client === 'browser'
        ? ["callStarted(segment, { episode_id: 'e1' });", "callEnded(rudder, { episode_id: 'e1', call_id: 'c1', type: 'hung_up' });", 'callStartd(segment, {});', 'userSignedUp(segment, { user_type: 3 });']
        : ["callStarted(segment, { userId: 'u1' }, { episode_id: 'e1' });", "callEnded(rudder, { anonymousId: 'a1' }, { episode_id: 'e1', call_id: 'c1', type: 'hung_up' });", "callStarted(segment, {}, { episode_id: 'e1', call_id: 'c1' });", "userSignedUp(segment, { userId: 'u1' }, { user_type: 3 });"];
      await fs.writeFile(path.join(dir, 'bad.ts'), [...head, ...bad, 'void callEnded; void userSignedUp;', ''].join('\n'));
      const failed = compile(dir, 'bad.ts');
      assert.notEqual(failed.status, 0);
      const lines = failed.stdout.split('\n').filter((l) => l.startsWith('bad.ts(')).map((l) => Number(/bad\.ts\((\d+),/.exec(l)![1]));
      const first = head.length + 1;
      assert.deepEqual([...new Set(lines)], [first, first + 1, first + 2, first + 3], failed.stdout);
    });
  }
});
