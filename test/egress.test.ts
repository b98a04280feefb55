/**
 * Connections out through a proxy: a collector started with HTTP_PROXY reaches its S3 storage and its
 * webhook destination through a real HTTP proxy on loopback, and a NO_PROXY host directly. Real child
 * processes, a real S3-protocol server, a real receiver.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createProxy } from 'proxy';
import { agentFor, proxyFor, routeOf } from '../src/lib/egress.js';
import { ConfigError } from '../src/lib/errors.js';
import { readRows, sendTagged, spawnCollector, tempDir } from './helpers.js';
import { startReceiver, until } from './receiver.js';
import { TestS3 } from './s3server.js';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** A real forwarding proxy on loopback that notes the host of every request and tunnel it carries. */
async function startProxy(): Promise<{ url: string; hosts: string[] }> {
  const hosts: string[] = [];
  const server = createProxy(http.createServer());
  server.prependListener('request', (req: http.IncomingMessage) => void hosts.push(new URL(req.url ?? '').host));
  server.prependListener('connect', (req: http.IncomingMessage) => void hosts.push(req.url ?? ''));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  server.unref();
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, hosts };
}

describe('connections out', () => {
  it('go through the proxy HTTP_PROXY names, S3 and webhooks alike, and to a NO_PROXY host directly', async () => {
    const s3 = await TestS3.start();
    closers.push(() => s3.down());
    const proxy = await startProxy();
    const r = await startReceiver();
    closers.push(() => r.close());
    const dir = tempDir('egress');
    const config = path.join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ destinations: [{ name: 'crm', type: 'webhook', url: r.url, secret: 'webhook-secret-0123456789', lingerMs: 0 }] }));
    const receiverHost = new URL(r.url).host;
    const s3Host = new URL(s3.endpoint).host;
    const args = ['--storage', `s3://${s3.bucket}/lake`, '--config', config, '--flush-interval-ms', '200'];

    const first = await spawnCollector(dir, args, { ...s3.env(), HTTP_PROXY: proxy.url });
    closers.push(async () => void first.proc.kill('SIGKILL'));
    assert.match(first.stdout(), new RegExp(`destination reached through ${proxy.url.replace(/[.:/]/g, '\\$&')}`));
    const sent = await sendTagged(first.url, { tag: 'proxied', batches: 2 });
    await until(() => r.delivered.length >= sent.acked.length, 'the webhook reached through the proxy');
    await until(async () => (await readRows(s3.store('lake'))).length >= sent.acked.length, 'the tracking rows in S3');
    assert.ok(proxy.hosts.includes(receiverHost), `the proxy carried the webhook's requests: ${proxy.hosts.join(' ')}`);
    assert.ok(proxy.hosts.includes(s3Host), `the proxy carried S3's requests: ${proxy.hosts.join(' ')}`);
    first.proc.kill('SIGTERM');
    assert.equal(await first.exited, 0);

    // The receiver listed in NO_PROXY: reached directly, while S3 still goes through the proxy.
    proxy.hosts.length = 0;
    const second = await spawnCollector(dir, args, { ...s3.env(), HTTP_PROXY: proxy.url, NO_PROXY: receiverHost });
    closers.push(async () => void second.proc.kill('SIGKILL'));
    assert.match(second.stdout(), /destination reached directly/);
    const more = await sendTagged(second.url, { tag: 'direct', batches: 1 });
    await until(() => r.delivered.length >= sent.acked.length + more.acked.length, 'the webhook reached directly');
    second.proc.kill('SIGTERM');
    assert.equal(await second.exited, 0);
    assert.ok(!proxy.hosts.includes(receiverHost), `the webhook went around the proxy: ${proxy.hosts.join(' ')}`);
    assert.ok(proxy.hosts.includes(s3Host), 'S3 still through the proxy');
  });

  it('choose the proxy per scheme and host as curl does, and name it without its credentials', () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { HTTPS_PROXY: 'http://user:secret@proxy.corp:3128', HTTP_PROXY: 'http://plain.corp:8080', NO_PROXY: '.internal,db:5432' });
      assert.equal(proxyFor('https://hooks.slack.com/x'), 'http://user:secret@proxy.corp:3128');
      assert.equal(proxyFor('http://crm.example.com/in'), 'http://plain.corp:8080');
      assert.equal(proxyFor('https://crm.internal/in'), undefined);
      assert.equal(routeOf('https://hooks.slack.com/x'), 'through http://proxy.corp:3128');
      assert.equal(agentFor('https://hooks.slack.com/x').constructor.name, 'HttpsProxyAgent');
      assert.equal(agentFor('https://crm.internal/x').constructor.name, 'Agent');
      delete process.env.HTTPS_PROXY;
      delete process.env.HTTP_PROXY;
      assert.equal(routeOf('https://hooks.slack.com/x'), 'directly');
      // A SOCKS proxy set for other tools: refused by name (without its password), not a failure per request.
      process.env.ALL_PROXY = 'socks5://me:pw@127.0.0.1:1080';
      assert.throws(() => routeOf('https://hooks.slack.com/x'), (e: unknown) => e instanceof ConfigError && /hooks\.slack\.com is "socks5:\/\/127\.0\.0\.1:1080": tracklake goes out through http:\/\/ or https:\/\/ proxies only/.test(e.message));
    } finally {
      for (const k of ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'ALL_PROXY']) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
