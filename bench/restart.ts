/**
 * bench:restart — how long a collector takes to be ready when its duplicate window holds many ids (default
 * 100 million, as id files of shipped segments), against the same collector starting with none, in one run;
 * and that a duplicate of an id from before the restart is still caught once it serves.
 *
 * BENCH_IDS (default 100 000 000), BENCH_IDS_PER_FILE (1 000 000, a busy minute's segment).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BYTES_PER_ID, ID_ENTRY_BYTES, writeIdsFile } from '../src/ingest/dedup.js';
import { fingerprint } from '../src/lib/fingerprint.js';
import { residentBytes, start } from './load.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const IDS = Number(process.env.BENCH_IDS ?? 100_000_000);
const PER_FILE = Number(process.env.BENCH_IDS_PER_FILE ?? 1_000_000);
const KNOWN = 1000;

/** Writes the id files a collector leaves after shipping IDS ids over the last 20 hours; the first KNOWN are real messageIds of tenant demo. */
async function writeIds(wal: string): Promise<void> {
  mkdirSync(wal, { recursive: true });
  const now = Date.now();
  let x = 12345;
  const files = Math.ceil(IDS / PER_FILE);
  for (let f = 0; f < files; f++) {
    const n = Math.min(PER_FILE, IDS - f * PER_FILE);
    const at = now - 20 * 3600_000 + Math.floor((f * 20 * 3600_000) / files);
    const buf = Buffer.alloc(n * ID_ENTRY_BYTES);
    for (let i = 0; i < n; i++) {
      const k = f * PER_FILE + i;
      let hi: number;
      let lo: number;
      if (k < KNOWN) [hi, lo] = fingerprint('demo', `restart-${k}`);
      else {
        x ^= x << 13; x ^= x >>> 17; x ^= x << 5; hi = x | 0;
        x ^= x << 13; x ^= x >>> 17; x ^= x << 5; lo = x | 0;
      }
      buf.writeInt32LE(hi, i * ID_ENTRY_BYTES);
      buf.writeInt32LE(lo, i * ID_ENTRY_BYTES + 4);
      buf.writeDoubleLE(at, i * ID_ENTRY_BYTES + 8);
    }
    await writeIdsFile(wal, f + 1, buf, at);
  }
}

async function timedStart(dir: string): Promise<{ seconds: number; rssMiB: number; duplicates: number }> {
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const env = { ...process.env, TRACKLAKE_DEDUP_MAX_BYTES: String(Math.ceil(IDS * BYTES_PER_ID * 1.05)) };
  const server = await start([path.join(here, '../src/cli/main.js'), 'serve', '--port', '0', '--storage', path.join(dir, 'data'), '--wal-dir', path.join(dir, 'wal'), '--log-level', 'info', '--no-api', '--no-scheduler'], dir, env);
  const seconds = (performance.now() - t0) / 1000;
  try {
    const rssMiB = (residentBytes(server.pid) ?? 0) / 2 ** 20;
    await fetch(`${server.url}/v1/track`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('dev:').toString('base64')}` },
      body: JSON.stringify({ event: 'Product Viewed', anonymousId: 'a', messageId: 'restart-7' }),
    });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const duplicates = Number(/^tracklake_events_duplicate_total (\S+)$/m.exec(metrics)?.[1] ?? NaN);
    return { seconds, rssMiB, duplicates };
  } finally {
    await server.stop();
  }
}

const root = mkdtempSync(path.join(os.tmpdir(), 'bench-restart-'));
try {
  console.log(`bench:restart — ${IDS} ids in the window, ${Math.ceil(IDS / PER_FILE)} id files, ${os.cpus().length} cores`);
  const empty = await timedStart(path.join(root, 'empty'));
  console.log(`baseline: the collector with no ids ready in ${empty.seconds.toFixed(2)} s, ${empty.rssMiB.toFixed(0)} MiB resident`);
  const full = path.join(root, 'full');
  const t0 = performance.now();
  await writeIds(path.join(full, 'wal'));
  console.log(`wrote the id files in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const r = await timedStart(full);
  console.log(`with ${IDS} ids: ready in ${r.seconds.toFixed(2)} s (${(r.seconds - empty.seconds).toFixed(2)} s more), ${r.rssMiB.toFixed(0)} MiB resident; ` +
    `a duplicate of an id from before the restart ${r.duplicates === 1 ? 'was caught' : 'was NOT caught'}`);
  process.exitCode = r.duplicates === 1 ? 0 : 1;
} finally {
  rmSync(root, { recursive: true, force: true });
}
