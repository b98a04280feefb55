/**
 * The read side's tokens: what a token grants, every way one is refused (each a 401 for the caller), the
 * kept secret, and `tracklake token create`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { ManualClock } from '../src/lib/clock.js';
import { ConfigError } from '../src/lib/errors.js';
import { createToken, loadSecret, parseDuration, verifyBearer } from '../src/query/tokens.js';
import { CLI, T0, tempDir } from './helpers.js';

const run = promisify(execFile);
const secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef');
const bearer = (t: string) => `Bearer ${t}`;

describe('read-side tokens', () => {
  it('carry the tenant, the merchant when given, and the expiry', async () => {
    const clock = new ManualClock(T0);
    const t = await createToken({ tenant: 'shop', merchant: 'm1' }, 3600, secret, clock);
    assert.deepEqual(await verifyBearer(bearer(t), secret, clock), { ok: true, scope: { tenant: 'shop', merchant: 'm1', exp: T0 / 1000 + 3600, access: 'read' } });
    const privacy = await verifyBearer(bearer(await createToken({ tenant: 'shop', access: 'privacy' }, 60, secret, clock)), secret, clock);
    assert.ok(privacy.ok && privacy.scope.access === 'privacy', 'a privacy token says so');
    const tenantOnly = await verifyBearer(bearer(await createToken({ tenant: 'shop' }, 60, secret, clock)), secret, clock);
    assert.ok(tenantOnly.ok && tenantOnly.scope.merchant === undefined);
  });

  it('are refused when missing, malformed, forged, unsigned, expired or without a tenant', async () => {
    const clock = new ManualClock(T0);
    const good = await createToken({ tenant: 'shop' }, 3600, secret, clock);
    const code = async (h: string | undefined, c = clock) => {
      const r = await verifyBearer(h, secret, c);
      return r.ok ? 'ok' : r.code;
    };
    assert.equal(await code(undefined), 'missing_token');
    assert.equal(await code('Basic ZGV2Og=='), 'missing_token');
    assert.equal(await code('Bearer not.a.token'), 'invalid_token');
    const other = await createToken({ tenant: 'shop' }, 3600, new TextEncoder().encode('another secret of thirty-two bytes!!'), clock);
    assert.equal(await code(bearer(other)), 'invalid_token', 'signed with another secret');
    const [h, p] = good.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, tenant: 'other-shop' })).toString('base64url')}.${good.split('.')[2]}`;
    assert.equal(await code(bearer(tampered)), 'invalid_token', 'a tenant changed after signing');
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${p}.`;
    assert.equal(await code(bearer(none)), 'invalid_token', 'alg none');
    const noTenant = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('tracklake').setExpirationTime(T0 / 1000 + 60).sign(secret);
    assert.equal(await code(bearer(noTenant)), 'invalid_token');
    assert.equal(await code(bearer(good), new ManualClock(T0 + 3601_000)), 'expired_token');
    assert.equal(await code(bearer(good)), 'ok');
  });

  it("accept a token a team's backend signs by following the README alone, and name a missing claim", async () => {
    // The README's example, run as written: Node's crypto, no JWT library.
    const readme = await fs.readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const example = /```js\n(\/\/ make-token\.mjs[\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(example, 'the README shows how to make a token by hand');
    const apiSecret = 'a secret of at least thirty-two characters';
    const made = await run(process.execPath, ['--input-type=module', '-e', example], { env: { ...process.env, TRACKLAKE_API_SECRET: apiSecret } });
    const token = made.stdout.trim();
    const key = new TextEncoder().encode(apiSecret);
    // Signed with the wall clock's now, so checked against it.
    const now = new ManualClock(Date.now());
    const r = await verifyBearer(bearer(token), key, now);
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual({ tenant: r.scope.tenant, merchant: r.scope.merchant, access: r.scope.access }, { tenant: 'demo', merchant: 'm12', access: 'read' });
    // The same without "iss": refused, and the answer says which claim and what it must be.
    const noIss = await new SignJWT({ tenant: 'demo' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(T0 / 1000 + 60).sign(key);
    const refused = await verifyBearer(bearer(noIss), key, new ManualClock(T0));
    assert.ok(!refused.ok && refused.code === 'invalid_token' && /"iss" claim is missing \(it must be "tracklake"\)/.test(refused.message), JSON.stringify(refused));
  });

  it('read lifetimes as 30d, 12h, 90m or seconds, and refuse anything else', () => {
    assert.equal(parseDuration('30d'), 30 * 86_400);
    assert.equal(parseDuration('12h'), 43_200);
    assert.equal(parseDuration('90m'), 5_400);
    assert.equal(parseDuration('3600'), 3_600);
    for (const bad of ['0d', '5y', '-1d', '1.5d', '', '9999d']) assert.throws(() => parseDuration(bad), ConfigError, bad);
  });

  it('are signed with the configured secret, else one made once and kept in the state folder (mode 0600)', async () => {
    const dir = tempDir('secret');
    const file = path.join(dir, 'state', 'api-secret');
    const first = await loadSecret(undefined, file);
    const again = await loadSecret(undefined, file);
    assert.deepEqual(again, first);
    const stat = await fs.stat(path.join(dir, 'state', 'api-secret'));
    assert.equal(stat.mode & 0o777, 0o600);
    assert.deepEqual(await loadSecret('x'.repeat(32), file), new TextEncoder().encode('x'.repeat(32)));
    await assert.rejects(loadSecret('short', file), /apiSecret/);
  });
});

describe('tracklake token create', () => {
  it('prints a token for a tenant of the configuration that the kept secret verifies', async () => {
    const dir = tempDir('token-cli');
    const env = { PATH: process.env.PATH ?? '', TRACKLAKE_SOURCES: 'k1=shop' };
    const { stdout } = await run(process.execPath, [CLI, 'token', 'create', '--tenant', 'shop', '--merchant', 'm7', '--expires', '7d'], { cwd: dir, env });
    const r = await verifyBearer(bearer(stdout.trim()), await loadSecret(undefined, path.join(dir, '.tracklake', 'api-secret')), new ManualClock(Date.now()));
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.scope.tenant, 'shop');
    assert.equal(r.scope.merchant, 'm7');
    await assert.rejects(run(process.execPath, [CLI, 'token', 'create', '--tenant', 'nope'], { cwd: dir, env }), (e: { code: number; stderr: string }) => e.code === 2 && /"tenant"/.test(e.stderr));
  });
});
