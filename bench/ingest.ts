/**
 * bench:ingest — the collector with durable (fsynced, group-committed) acks against a bare node:http server
 * that only JSON-parses, with the same payloads and the same load generator (autocannon) in one run.
 * Target: collector events/s ≥ 0.5 × bare events/s.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { simulateTraffic } from '../src/segment/simulator.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const PER_BATCH = 20;

function start(args: string[], cwd: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"address":"(http:\/\/[^"]+)"/.exec(out);
      if (m) resolve({ url: m[1]!, stop: () => new Promise<void>((r) => { proc.on('exit', () => r()); proc.kill('SIGTERM'); }) });
    });
    proc.on('exit', (code) => reject(new Error(`exited ${code}`)));
  });
}

/** Batch bodies of 20 realistic events; "@@" in each messageId becomes a per-request counter so nothing is a duplicate. */
function payloadTemplates(): string[] {
  const msgs = [...simulateTraffic({ events: 2000, days: 1, endMs: Date.parse('2026-03-15T00:00:00Z'), seed: 7 })];
  const out: string[] = [];
  for (let i = 0; i < msgs.length; i += PER_BATCH) {
    const batch = msgs.slice(i, i + PER_BATCH).map((m, j) => ({ ...m, messageId: `@@-${j}` }));
    out.push(JSON.stringify({ batch }));
  }
  return out;
}

async function measure(url: string, templates: string[]): Promise<{ eventsPerSec: number; p99: number; non2xx: number }> {
  let n = 0;
  const result = await autocannon({
    url: `${url}/v1/batch`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: DURATION,
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('dev:').toString('base64')}` },
    requests: [{ setupRequest: (req) => ({ ...req, body: templates[n % templates.length]!.replaceAll('@@', `r${n++}`) }) }],
  });
  return { eventsPerSec: (result.requests.total - result.non2xx) * PER_BATCH / DURATION, p99: result.latency.p99, non2xx: result.non2xx };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-ingest-'));
const templates = payloadTemplates();
console.log(`bench:ingest — ${DURATION} s per target, ${CONNECTIONS} connections, ${PER_BATCH} events per request, ${os.cpus().length} cores`);

const bare = await start([path.join(here, 'bare-server.js')], dir);
const b = await measure(bare.url, templates);
await bare.stop();

const collector = await start([path.join(here, '../src/cli/main.js'), 'serve', '--port', '0', '--storage', path.join(dir, 'data'), '--wal-dir', path.join(dir, 'wal'), '--log-level', 'info', '--flush-interval-ms', '5000'], dir);
const a = await measure(collector.url, templates);
await collector.stop();
rmSync(dir, { recursive: true, force: true });

const row = (name: string, r: { eventsPerSec: number; p99: number; non2xx: number }) =>
  `${name.padEnd(34)} ${Math.round(r.eventsPerSec).toString().padStart(9)} events/s   p99 ${String(r.p99).padStart(4)} ms   non-2xx ${r.non2xx}`;
console.log(row('(a) tracklake collector, durable', a));
console.log(row('(b) bare node:http + JSON.parse', b));
const ratio = a.eventsPerSec / b.eventsPerSec;
console.log(`ratio a/b = ${ratio.toFixed(2)} (target ≥ 0.50) ${ratio >= 0.5 ? 'PASS' : 'FAIL'}`);
process.exitCode = ratio >= 0.5 ? 0 : 1;
