/** Tracking plans: the seed-002 conventions as checks, every violation type, enforcement, bad plan files, `plan check`. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadPlan, parsePlan, PlanError, type Verdict } from '../src/plan/plan.js';
import { CLI, tempDir } from './helpers.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../plans/example.yaml');
const plan = loadPlan(EXAMPLE);
const track = (event: string, properties: Record<string, unknown> = {}) => plan.check({ type: 'track', event, userId: 'u1', properties });
const types = (v: Verdict) => v.violations.map((x) => `${x.type} ${x.field}`).sort();
const good = { episode_id: 'e1', call_id: 'c1' };

describe('the seed-002 conventions', () => {
  it('names events Object-Action, all lower case, with a past-tense action', () => {
    assert.deepEqual(types(track('user signed up', { user_type: 'patient' })), []);
    assert.deepEqual(types(track('call started', good)), []);
    for (const bad of ['User Signed Up', 'signup', 'start call', 'call  started', 'call_started']) {
      assert.ok(types(track(bad)).includes('Naming-Convention event'), bad);
    }
  });

  it('asks for similar events to be flattened into one with a type', () => {
    const v = track('call ended by patient', good);
    assert.ok(v.violations.some((x) => x.type === 'Naming-Convention' && /flatten it into "call ended" with a "type"/.test(x.message)));
  });

  it('never takes channel_id: episode_id is the name', () => {
    const v = track('call started', { ...good, channel_id: 'e1' });
    assert.deepEqual(types(v), ['Forbidden-Property properties.channel_id']);
    assert.match(v.violations[0]!.message, /use "episode_id"/);
  });

  it('takes user_type only with a known user type', () => {
    assert.deepEqual(types(track('user signed up', { user_type: 'practitioner' })), []);
    assert.deepEqual(types(track('user signed up', { user_type: 'robot' })), ['Invalid-Value properties.user_type']);
    assert.deepEqual(types(plan.check({ type: 'identify', userId: 'u1', traits: { user_type: 'robot' } })), ['Invalid-Value traits.user_type']);
  });

  it('requires episode_id on every call event, planned or not', () => {
    assert.ok(types(track('call dropped', { call_id: 'c1' })).includes('Required-Missing properties.episode_id'));
    // Required by the schema and by the convention: one violation.
    assert.deepEqual(types(track('call started', { call_id: 'c1' })), ['Required-Missing properties.episode_id']);
  });
});

describe('violations and enforcement', () => {
  it('names every violation type as the field knows it', () => {
    assert.deepEqual(types(track('page scrolled')), ['Unplanned-Event event']);
    assert.deepEqual(types(track('call started', { ...good, call_id: 7 })), ['Datatype-Mismatch properties.call_id']);
    assert.deepEqual(types(track('user signed up', { user_type: 'patient', colour: 'red' })), ['Additional-Properties properties.colour']);
    assert.deepEqual(types(track('call ended', { ...good, type: 'hung_up' })), ['Invalid-Value properties.type']);
    assert.deepEqual(types(track('call ended', { ...good, type: 'dropped', duration_seconds: -1 })), ['Invalid-Value properties.duration_seconds']);
  });

  it('takes the strongest action its violations call for', () => {
    assert.equal(track('user signed up', { user_type: 'patient' }).action, 'allow');
    assert.equal(track('page scrolled').action, 'allow'); // Unplanned-Event: allow, recorded
    const omitted = track('user signed up', { user_type: 'patient', colour: 'red', channel_id: 'x' });
    assert.deepEqual([omitted.action, omitted.omit], ['omit', ['channel_id', 'colour']]);
    const blocked = track('call started', { call_id: 'c1', colour: 'red' });
    assert.deepEqual([blocked.action, blocked.omit], ['block', []]);
  });

  it('allows and records everything without an enforcement section', () => {
    const p = parsePlan('version: 1\nevents:\n  - name: call started\n    properties: { type: object, required: [call_id] }\n');
    const v = p.check({ type: 'track', event: 'call started', properties: {} });
    assert.deepEqual([v.action, types(v)], ['allow', ['Required-Missing properties.call_id']]);
  });
});

describe('plan files', () => {
  const refused = (text: string, place: RegExp, problem: RegExp) => {
    assert.throws(() => parsePlan(text, 'p.yaml'), (e: unknown) => e instanceof PlanError && place.test(e.place) && problem.test(e.problem) && e.message.startsWith('tracking plan p.yaml'));
  };

  it('refuses a bad plan naming the place and the problem', () => {
    refused('version: 1\nevents: [\n', /^line \d+, column \d+$/, /Flow sequence/);
    refused('version: 2\n', /^version/, /./);
    refused('version: 1\ncolour: red\n', /colour/, /Unrecognized key/);
    refused('version: 1\nevents:\n  - name: a b\n    propertees: {}\n', /^events\.0/, /Unrecognized key/);
    refused('version: 1\nenforcement:\n  Unplanned-Event: reject\n', /^enforcement\.Unplanned-Event \(line 3\)/, /allow|omit|block/);
    refused('version: 1\nevents:\n  - name: a b\n  - name: a b\n', /^events\.1\.name/, /planned twice/);
    refused('version: 1\nevents:\n  - name: a b\n    properties: { type: objekt }\n', /^events\.0\.properties/, /not a valid JSON Schema/);
    refused('version: 1\nconventions:\n  eventName: "([a-z"\n', /^conventions\.eventName/, /not a regular expression/);
  });

  it('the README shows the example plan as it is', async () => {
    const readme = await fs.readFile(path.resolve(path.dirname(EXAMPLE), '../README.md'), 'utf8');
    assert.ok(readme.includes(`\`\`\`yaml\n${await fs.readFile(EXAMPLE, 'utf8')}\`\`\``), 'README.md and plans/example.yaml differ');
  });

  it('tracklake plan check: the example is valid, a bad file exits 2 with its place', async () => {
    const ok = spawnSync(process.execPath, [CLI, 'plan', 'check', EXAMPLE], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /a valid plan of 3 events; Unplanned-Event: allow/);
    const bad = path.join(tempDir('plan'), 'bad.yaml');
    await fs.writeFile(bad, 'version: 1\nenforcement:\n  Required-Missing: drop\n');
    const r = spawnSync(process.execPath, [CLI, 'plan', 'check', bad], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid setting "plan": tracking plan .*bad\.yaml at enforcement\.Required-Missing \(line 3\)/);
  });
});
