import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.js';
import { ConfigError } from '../src/lib/errors.js';
import { tempDir } from './helpers.js';

const fails = (input: Parameters<typeof loadConfig>[0], setting: RegExp) =>
  assert.throws(() => loadConfig(input), (e: unknown) => e instanceof ConfigError && setting.test(e.message));

describe('configuration', () => {
  it('has embedded defaults: local ./data, 127.0.0.1:8080, key dev for tenant demo', () => {
    const c = loadConfig({});
    assert.equal(c.storage, './data');
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 8080);
    assert.deepEqual(c.sources, { dev: 'demo' });
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.sources));
    // The node's folder, and its log inside it unless the log is put elsewhere.
    assert.equal(c.stateDir, './.tracklake');
    assert.equal(c.walDir, path.join('.tracklake', 'wal'));
    assert.equal(loadConfig({ flags: { stateDir: '/srv/a' } }).walDir, '/srv/a/wal');
    assert.equal(loadConfig({ flags: { stateDir: '/srv/a', walDir: '/fast/wal' } }).walDir, '/fast/wal');
  });

  it('takes flags over environment over the config file', () => {
    const file = path.join(tempDir('cfg'), 'tracklake.config.json');
    writeFileSync(file, JSON.stringify({ port: 1111, host: '0.0.0.0', sources: { k: 'file-tenant' }, metrics: [{ name: 'sales', events: ['sales'], measure: 'sum' }] }));
    const c = loadConfig({ configFile: file, env: { TRACKLAKE_PORT: '2222', TRACKLAKE_SOURCES: 'a=t1, b=t2' }, flags: { port: '3333' } });
    assert.equal(c.port, 3333);
    assert.equal(c.host, '0.0.0.0');
    assert.deepEqual(c.sources, { a: 't1', b: 't2' });
    assert.equal(c.metrics[0]!.name, 'sales');
  });

  it('takes publicUrl, the address clients reach the collector at, without its trailing slash', () => {
    assert.equal(loadConfig({ env: { TRACKLAKE_PUBLIC_URL: 'https://collect.example.com/t/' } }).publicUrl, 'https://collect.example.com/t');
    assert.equal(loadConfig({ flags: { publicUrl: 'http://10.0.0.5:8080' } }).publicUrl, 'http://10.0.0.5:8080');
    assert.equal(loadConfig({}).publicUrl, undefined);
  });

  it('attaches tracking plans by tenant; a config file\'s relative paths are relative to it', () => {
    const dir = tempDir('cfg');
    const file = path.join(dir, 'tracklake.config.json');
    writeFileSync(file, JSON.stringify({ sources: { k1: 'acme', k2: 'beta' }, plans: { acme: 'plans/acme.yaml', beta: '/etc/tracklake/beta.yaml' } }));
    assert.deepEqual(loadConfig({ configFile: file }).plans, { acme: path.join(dir, 'plans/acme.yaml'), beta: '/etc/tracklake/beta.yaml' });
    const env = loadConfig({ env: { TRACKLAKE_SOURCES: 'k1=acme,k2=beta', TRACKLAKE_PLANS: 'acme=a.yaml, beta=b.yaml' } });
    assert.deepEqual(env.plans, { acme: 'a.yaml', beta: 'b.yaml' });
    fails({ env: { TRACKLAKE_PLANS: 'acme' } }, /TRACKLAKE_PLANS.*"acme" is not tenant=file/);
    fails({ env: { TRACKLAKE_PLANS: 'acme=a.yaml,acme=b.yaml', TRACKLAKE_SOURCES: 'k=acme' } }, /tenant listed twice/);
    fails({ env: { TRACKLAKE_PLANS: 'nobody=a.yaml' } }, /"plans\.nobody".*no source sends to tenant "nobody"/);
  });

  it('takes a config file\'s ${env:NAME} from the environment, so secrets stay out of the file', () => {
    const file = path.join(tempDir('cfg'), 'tracklake.config.json');
    const destinations = [
      { name: 'crm', type: 'webhook', url: 'https://crm.example.com/hook', secret: '${env:CRM_SECRET}' },
      { name: 'warehouse', type: 'postgres', url: 'postgres://tl:${env:PG_PASSWORD}@db:5432/lake' },
    ];
    writeFileSync(file, JSON.stringify({ destinations }));
    const env = { CRM_SECRET: 'a-secret-of-24-characters', PG_PASSWORD: 'p@ss' };
    const c = loadConfig({ configFile: file, env });
    assert.deepEqual(c.destinations.map((d) => ('secret' in d ? d.secret : d.url)), ['a-secret-of-24-characters', 'postgres://tl:p@ss@db:5432/lake']);
    fails({ configFile: file, env: { PG_PASSWORD: 'x' } }, /"destinations\.crm\.secret": the environment variable CRM_SECRET it refers to is not set/);
    fails({ configFile: file, env: { CRM_SECRET: 'a-secret-of-24-characters', PG_PASSWORD: '' } }, /"destinations\.warehouse\.url".*PG_PASSWORD/);
  });

  it('stops on a bad setting with a message that names it', () => {
    fails({ flags: { port: 'eighty' } }, /"port"/);
    fails({ env: { TRACKLAKE_FLUSH_INTERVAL_MS: '-5' } }, /"flushIntervalMs"/);
    fails({ env: { TRACKLAKE_SOURCES: 'keyonly' } }, /TRACKLAKE_SOURCES/);
    fails({ env: { TRACKLAKE_SOURCES: 'k=bad tenant!' } }, /sources/);
    fails({ env: { TRACKLAKE_TRUST_PROXY: 'maybe' } }, /TRACKLAKE_TRUST_PROXY/);
    fails({ flags: { timezone: 'Mars/Olympus' } }, /"timezone"/);
    fails({ flags: { scheduleTime: '25:00' } }, /"scheduleTime"/);
    fails({ env: { TRACKLAKE_MAX_SEGMENT_BYTES: String(3 * 2 ** 30) } }, /"maxSegmentBytes": at most 1 GiB/);
    fails({ env: { AWS_ENDPOINT_URL: 'not a url' } }, /"s3Endpoint"/);
    for (const bad of ['localhost:6379', 'http://localhost:6379', 'redis://']) fails({ env: { TRACKLAKE_DEDUP_REDIS_URL: bad } }, /"dedupRedisUrl": a redis:\/\/ or rediss:\/\/ URL/);
    for (const bad of ['collect.example.com', 'ftp://collect.example.com', 'https://collect.example.com/?x=1', 'https://u:p@collect.example.com']) {
      fails({ env: { TRACKLAKE_PUBLIC_URL: bad } }, /"publicUrl"/);
    }
    const dir = tempDir('cfg');
    writeFileSync(path.join(dir, 'bad.json'), '{"port": 80,');
    fails({ configFile: path.join(dir, 'bad.json') }, /"config".*not valid JSON/);
    writeFileSync(path.join(dir, 'unknown.json'), '{"prot": 80}');
    fails({ configFile: path.join(dir, 'unknown.json') }, /prot/);
    writeFileSync(path.join(dir, 'dup.json'), JSON.stringify({ metrics: [{ name: 'view', events: ['x'], measure: 'count' }] }));
    fails({ configFile: path.join(dir, 'dup.json') }, /metrics\.view/);
    fails({ configFile: path.join(dir, 'missing.json') }, /"config": cannot read/);
  });
});
