/**
 * Starting and stopping `tracklake serve` as an operator does, with the read side on: the log is recovered,
 * the signal handlers installed and every port bound before anything is acknowledged; SIGTERM at any moment
 * after that ships everything and exits 0; a port that is taken stops the start-up with exit 2, having
 * acknowledged nothing. Real child processes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LocalStore } from '../src/storage/local.js';
import { CLI, readRows, sendTagged, spawnCollector, tempDir } from './helpers.js';
import { freePort, TestS3 } from './s3server.js';

const sendUntil = (url: string, until: Promise<unknown>, tag: string) => sendTagged(url, { until, tag });

function serve(dir: string, args: string[], env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, [CLI, 'serve', '--storage', path.join(dir, 'data'), '--wal-dir', path.join(dir, 'wal'), '--log-level', 'info', '--no-scheduler', '--flush-interval-ms', '3600000', ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  // The moment the handlers are installed (before that, a signal ends the process as it ends any other).
  const handling = new Promise<void>((resolve) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('SIGTERM now ships everything')) resolve();
    });
  });
  return { proc, exited, handling, stderr: () => err, stdout: () => out, walDir: path.join(dir, 'wal') };
}

/** The collector's address, once its log says it listens. */
function listening(life: { stdout(): string }): Promise<string> {
  return new Promise((resolve) => {
    const look = () => {
      const m = /"address":"(http:\/\/[^"]+)"[^\n]*"msg":"collector listening"/.exec(life.stdout());
      if (m) resolve(m[1]!);
      else setTimeout(look, 20);
    };
    look();
  });
}

/**
 * A TCP relay to a port that, once told to hang, drops the connections it relays and takes new ones without
 * ever answering: storage that stops responding (uploads wait for their timeouts, then retry).
 */
async function blackHoleGate(port: number): Promise<{ url: string; hang(): void; close(): void }> {
  let hanging = false;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    if (hanging) return;
    const upstream = connect(port, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    hang() {
      hanging = true;
      for (const c of open) c.destroy();
    },
    close() {
      for (const c of open) c.destroy();
      server.close();
    },
  };
}

describe('tracklake serve, started and stopped', () => {
  it('ships everything and exits 0 on SIGTERM at any moment after a kill -9, the read side on', async () => {
    const dir = tempDir('startup');
    const store = new LocalStore(path.join(dir, 'data'));
    const port = await freePort();
    const args = ['--port', String(port), '--api-port', '0', '--node-id', 'n1'];
    const acked: string[] = [];
    // A first life, killed: what it acknowledged is only in its log.
    const first = await spawnCollector(dir, args.slice(2).concat(['--port', String(port), '--no-scheduler', '--flush-interval-ms', '3600000']));
    const killed = new Promise((r) => setTimeout(r, 400));
    const sent = sendUntil(first.url, killed, 'first');
    await killed;
    first.proc.kill('SIGKILL');
    acked.push(...(await sent).acked);
    await first.exited;
    assert.ok(acked.length > 0);
    // Then restarted and stopped as soon as its handlers are installed, and at delays up to and past the read
    // cache's first load; each life is sent events from its first moment.
    for (const delay of [0, 30, 100, 250, 600, 1500]) {
      const life = serve(dir, args);
      const stopped = life.handling.then(() => new Promise((r) => setTimeout(r, delay))).then(() => life.proc.kill('SIGTERM'));
      const during = sendUntil(`http://127.0.0.1:${port}`, life.exited, `d${delay}`);
      await stopped;
      assert.equal(await life.exited, 0, `SIGTERM after ${delay} ms: ${life.stderr()}`);
      acked.push(...(await during).acked);
    }
    const stored = new Map<string, number>();
    for (const r of await readRows(store)) stored.set(r.correlationid!, (stored.get(r.correlationid!) ?? 0) + 1);
    assert.deepEqual(acked.filter((id) => stored.get(id) !== 1), [], 'every acknowledged event stored, once');
  });

  it('ships everything when SIGTERM comes twice at once (npm handing it on), and stops at once on a later one', async () => {
    const dir = tempDir('twice');
    const store = new LocalStore(path.join(dir, 'data'));
    const life = serve(dir, ['--port', '0', '--no-api']);
    await life.handling;
    const url = await listening(life);
    const sent = await sendTagged(url, { tag: 'twice', batches: 3 });
    life.proc.kill('SIGTERM');
    life.proc.kill('SIGTERM'); // systemd signals the group: npm's copy follows its own
    assert.equal(await life.exited, 0, life.stderr());
    assert.deepEqual((await readRows(store)).map((r) => r.correlationid).sort(), [...sent.acked].sort());

    // A stop that cannot finish (its S3 server went down: uploads retried until shutdownTimeoutMs), then a
    // signal seconds later: out at once, 143, what it acknowledged kept in its log.
    const s3 = await TestS3.start();
    const gate = await blackHoleGate(s3.port);
    const stuck = serve(tempDir('stuck'), ['--port', '0', '--no-api', '--storage', `s3://${s3.bucket}/lake`], { ...s3.env(), AWS_ENDPOINT_URL: gate.url });
    await stuck.handling;
    const stuckUrl = await listening(stuck);
    const more = await sendTagged(stuckUrl, { tag: 'stuck', batches: 1 });
    gate.hang();
    stuck.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    const at = Date.now();
    stuck.proc.kill('SIGTERM');
    assert.equal(await stuck.exited, 143);
    assert.ok(Date.now() - at < 5000, 'stopped at once');
    assert.ok(more.acked.length > 0);
    assert.ok((await fs.readdir(stuck.walDir)).some((f) => f.startsWith('seg-')), 'what it acknowledged kept in its log');
    gate.close();
    await s3.down();
  });

  it('exits 2 naming the read side\'s port when it is taken, having acknowledged nothing', async () => {
    const dir = tempDir('taken');
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const apiPort = (taken.address() as { port: number }).port;
    const port = await freePort();
    try {
      const life = serve(dir, ['--port', String(port), '--api-port', String(apiPort)]);
      const tried = await sendUntil(`http://127.0.0.1:${port}`, life.exited, 'taken');
      assert.equal(await life.exited, 2);
      assert.match(life.stderr(), /"apiPort"/);
      assert.deepEqual(tried.acked, [], `statuses seen: ${[...new Set(tried.statuses)].join(', ')}`);
      assert.deepEqual(await readRows(new LocalStore(path.join(dir, 'data'))), []);
    } finally {
      taken.close();
    }
  });
});
