/**
 * bench:profile — where each microsecond of an event goes in the collector, under bench:ingest's traffic.
 *
 * The collector runs with V8's CPU profiler on (`--cpu-prof`: a profile per thread, the request thread and
 * the worker that prepares requests), and the same load generator sends the same batches as bench:ingest.
 * Only the samples taken while the load ran count (a profile's clock is the monotonic one this process
 * reads with process.hrtime). Each sample is charged to a stage by the nearest frame of its stack that
 * belongs to one (stages below), and the stages are reported in µs of CPU per event. The process's threads
 * that V8 does not profile (the log's writes on libuv's threads, the garbage collector's helpers) are
 * reported from /proc as the rest. The bare node:http server of bench:ingest runs first, as the baseline.
 *
 * Sampling costs the collector a share of its speed (the events/s printed are the profiled run's); the µs
 * per event are its CPU, which is what the stages divide.
 *
 * BENCH_SECONDS (15), BENCH_CONNECTIONS (32), BENCH_INTERVAL_US (sampling interval, 1000), BENCH_TOP
 * (functions with the most self time listed per thread, 0), BENCH_CONFIG (a config file for the collector: with
 * destinations, say), BENCH_RATE (events a second offered, as bench:forward's: two configurations compared at
 * one throughput instead of each at its own saturation; the bare server gets the same rate).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { cpuSeconds, payloadTemplates, start, type Server } from './load.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const INTERVAL_US = Number(process.env.BENCH_INTERVAL_US ?? 1000);
const PER_BATCH = 20;
const TOP = Number(process.env.BENCH_TOP ?? 0);
const RATE = process.env.BENCH_RATE === undefined ? undefined : Number(process.env.BENCH_RATE);
if (RATE !== undefined && !(RATE > 0)) throw new Error(`BENCH_RATE: events a second, a positive number, not ${process.env.BENCH_RATE}`);

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Stages, matched against a frame's script (url) and function name, in order; the first frame from the leaf
 * up that matches one decides. Frames of Node's own modules and V8's builtins are walked past, so a Buffer
 * copy made by the CSV writer is charged to CSV; when nothing else matches, the first of them is, as
 * "Node internals". JSON.parse has no frame of its own: its time is its caller's, parseBody's.
 */
const STAGES: Array<[string, RegExp, RegExp?]> = [
  ['faulting in index tables (prefault threads)', /\[worker eval\]/],
  ['shipping to storage', /\/src\/(ingest\/shipper|storage|privacy\/ship-filter)/],
  ['logging, metrics', /\/node_modules\/(pino|prom-client|sonic-boom|thread-stream)\/|\/src\/lib\/(metrics|pauses)/],
  ['duplicates (index, fingerprint)', /\/src\/ingest\/dedup|\/src\/lib\/fingerprint/],
  ['log records (layout, framing, CRC)', /\/src\/ingest\/(records|wal)/, /^(encodeFrame|crcHex|framePayload)$/],
  ['log write, group commit', /\/src\/ingest\/wal/],
  ['parsing (UTF-8 check, JSON.parse)', /\/src\/ingest\/prepare\./, /^parseBody$/],
  ['CSV', /\/src\/tracking\/csv/],
  ['mapping, enrichment', /\/src\/tracking\/|\/node_modules\/(ua-parser-js|isbot)\//],
  ['validation', /\/src\/segment\/message/],
  ['tracking plan, observed schemas', /\/src\/plan\//],
  ['privacy (addresses, suppression)', /\/src\/privacy\//],
  ['log records (layout, framing, CRC)', /\/src\/ingest\/records/],
  ['preparing (the loop, the rest)', /\/src\/ingest\/prepare\.|\/src\/lib\//],
  ['hand-off between threads', /\/src\/ingest\/preparer|\/src\/ingest\/prepare-worker|node:internal\/worker|node:worker_threads|messageport/],
  ['collector (accept)', /\/src\/ingest\/collector/],
  ['destinations (log read, batches, requests)', /\/src\/forward\//],
  ['HTTP (Fastify, routes, body)', /\/src\/api\/|\/node_modules\/(fastify|find-my-way|avvio|@fastify|fast-json-stringify|light-my-request|secure-json-parse|fast-querystring|abstract-logging|process-warning|toad-cache|rfdc|fast-decode-uri-component)\//],
  ['HTTP (node)', /^node:(_http|http|net|stream|internal\/(http|streams|stream_base|net|js_stream|timers)|events|internal\/process\/task_queues|timers)/],
];

function stageOf(stack: CallFrame[]): string {
  let fallback: string | undefined;
  for (const f of stack) {
    if (f.functionName === '(garbage collector)') return 'garbage collection';
    if (f.functionName === '(idle)') return 'idle';
    if (f.functionName === '(program)') return 'V8 and Node outside JS';
    const stage = STAGES.find(([, url, fn]) => url.test(f.url) && (!fn || fn.test(f.functionName)))?.[0];
    if (stage && !f.url.startsWith('node:')) return stage;
    if (f.url.startsWith('node:')) fallback ??= stage ?? 'Node internals (other)';
  }
  return fallback ?? 'other';
}

/** Self time per function (name and script) in a profile, in the window: the top of where to look next. */
function hottest(profile: Profile, from: number, to: number, n: number): Array<[string, number]> {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    if (t < from || t > to) continue;
    const f = byId.get(profile.samples[i]!)!.callFrame;
    if (f.functionName === '(idle)') continue;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|node_modules)\//, '$1/')}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i + 1] ?? INTERVAL_US));
  }
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n);
}

/** CPU µs per stage in a profile, counting only samples taken between from and to (µs, monotonic). */
function stages(profile: Profile, from: number, to: number): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageById = new Map<number, string>();
  const stage = (id: number): string => {
    let s = stageById.get(id);
    if (s === undefined) {
      const stack: CallFrame[] = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at)!.callFrame);
      stageById.set(id, (s = stageOf(stack)));
    }
    return s;
  };
  const out = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    // A sample stands for the time since the one before it.
    const next = profile.timeDeltas[i + 1] ?? INTERVAL_US;
    if (t < from || t > to) continue;
    const s = stage(profile.samples[i]!);
    out.set(s, (out.get(s) ?? 0) + next);
  }
  return out;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function load(server: Server, templates: string[]): Promise<{ events: number; requests: number; from: number; to: number; cpu: number }> {
  let n = 0;
  // Warm-up first (the JIT, the worker), outside the measured window.
  const opts = {
    url: `${server.url}/v1/batch`,
    method: 'POST' as const,
    connections: CONNECTIONS,
    ...(RATE ? { overallRate: RATE / PER_BATCH } : {}),
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('dev:').toString('base64')}` },
    requests: [{ setupRequest: (req: object) => ({ ...req, body: templates[n % templates.length]!.replaceAll('@@', `r${n++}`) }) }],
  };
  await autocannon({ ...opts, duration: 3 });
  const cpu0 = cpuSeconds(server.pid) ?? NaN;
  const from = nowUs();
  const r = await autocannon({ ...opts, duration: DURATION });
  const to = nowUs();
  const cpu = (cpuSeconds(server.pid) ?? NaN) - cpu0;
  return { events: (r.requests.total - r.non2xx) * PER_BATCH, requests: r.requests.total, from, to, cpu };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-profile-'));
const templates = payloadTemplates(PER_BATCH);
console.log(`bench:profile — ${DURATION} s of bench:ingest's traffic (${CONNECTIONS} connections, ${PER_BATCH} events per request${RATE ? `, ${RATE} events/s offered` : ''}), sampled every ${INTERVAL_US} µs, ${os.cpus().length} cores`);
try {
  const bare = await start([path.join(here, 'bare-server.js')], dir);
  const b = await load(bare, templates);
  await bare.stop();

  const profDir = path.join(dir, 'prof');
  const server = await start(
    [`--cpu-prof`, `--cpu-prof-dir=${profDir}`, `--cpu-prof-interval=${INTERVAL_US}`, path.join(here, '../src/cli/main.js'), 'serve', '--port', '0', '--storage', path.join(dir, 'data'), '--wal-dir', path.join(dir, 'wal'), '--log-level', 'info', '--flush-interval-ms', '5000', '--no-api', '--no-scheduler', ...(process.env.BENCH_CONFIG ? ['--config', process.env.BENCH_CONFIG] : [])],
    dir,
  );
  const a = await load(server, templates);
  await server.stop();

  const perEvent = (us: number) => us / a.events;
  console.log(`bare node:http + JSON.parse: ${Math.round(b.events / DURATION)} events/s, ${((b.cpu * 1e6) / b.events).toFixed(2)} µs of CPU per event`);
  console.log(`collector: ${Math.round(a.events / DURATION)} events/s (${(a.events / b.events).toFixed(2)} of bare), ${((a.cpu * 1e6) / a.events).toFixed(2)} µs of CPU per event, all threads`);
  let profiled = 0;
  // CPU.<date>.<time>.<pid>.<thread id>.<n>.cpuprofile: thread 0 is the main one. Threads that fault index
  // tables in come and go (ingest/prefault.ts): they are summed into one line.
  let prefaultUs = 0;
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).sort();
  for (const file of files) {
    const profile = JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as Profile;
    const byStage = stages(profile, a.from, a.to);
    const busy = [...byStage].filter(([s]) => s !== 'idle').reduce((x, [, us]) => x + us, 0);
    profiled += busy;
    const runs = (script: RegExp) => profile.nodes.some((n) => script.test(n.callFrame.url));
    const thread = /\.\d+\.0\.\d+\.cpuprofile$/.test(file) ? 'request thread' : runs(/prepare-worker/) ? 'worker thread (preparing)' : runs(/send-worker/) ? 'destination sender thread' : undefined;
    if (thread === undefined) {
      prefaultUs += busy;
      continue;
    }
    console.log(`\n${thread}: busy ${((100 * busy) / (a.to - a.from)).toFixed(0)}% of the time, ${perEvent(busy).toFixed(2)} µs per event`);
    for (const [s, us] of [...byStage].sort((x, y) => y[1] - x[1])) {
      if (s === 'idle' || us / busy < 0.005) continue;
      console.log(`  ${s.padEnd(44)} ${perEvent(us).toFixed(2).padStart(6)} µs/event  ${((100 * us) / busy).toFixed(1).padStart(5)}%`);
    }
    for (const [fn, us] of hottest(profile, a.from, a.to, TOP)) console.log(`    ${perEvent(us).toFixed(2).padStart(6)} µs/event  ${fn}`);
  }
  console.log(`\nthreads faulting in index tables: ${perEvent(prefaultUs).toFixed(2)} µs per event`);
  console.log(`\nthreads V8 does not profile (log writes on libuv's threads, GC helpers): ${perEvent(a.cpu * 1e6 - profiled).toFixed(2)} µs per event`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
