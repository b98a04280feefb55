/**
 * Starting and stopping `tracklake serve` as an operator does, with the read side on: the log is recovered,
 * the signal handlers installed and every port bound before anything is acknowledged; SIGTERM at any moment
 * after that ships everything and exits 0; a port that is taken stops the start-up with exit 2, having
 * acknowledged nothing. Real child processes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LocalStore } from '../src/storage/local.js';
import { CLI, readRows, sendTagged, spawnCollector, tempDir } from './helpers.js';
import { freePort } from './s3server.js';

const sendUntil = (url: string, until: Promise<unknown>, tag: string) => sendTagged(url, { until, tag });

function serve(dir: string, args: string[]) {
  const proc = spawn(process.execPath, [CLI, 'serve', '--storage', path.join(dir, 'data'), '--wal-dir', path.join(dir, 'wal'), '--log-level', 'info', '--no-scheduler', '--flush-interval-ms', '3600000', ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  return { proc, exited, handling, stderr: () => err };
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
