/**
 * bench:soak — the collector under steady load for long enough that its duplicate index grows through many
 * doublings and then expires a whole (shortened) window over and over, measured phase by phase; then the same
 * load against the same collector with duplicate detection off, as the floor.
 *
 * Each phase reports the load's events/s and request latency (p50, p99, p99.9, max, from autocannon), a
 * probe's latency (one small request every 20 ms on its own connection: what a browser sees while the
 * collector is busy), the collector's resident memory and its index (ids, bytes, effective window), and from
 * the collector itself the event loop's longest delay, its garbage collections and its log's durable writes
 * (the disk) over 50 ms.
 * Target: in every phase, p99.9 within 2× of the floor's and max latency under 250 ms.
 *
 * BENCH_SIZE=production is the size a production node sees: the real 24 h window and the default budget,
 * phases of 30 s until 60 M ids have been sent (at least 7 minutes), so the index passes every size the
 * budget allows and the budget then cuts the oldest ids. It also reports peak resident memory and where the
 * longest pause happened (the collector logs every pause of 100 ms or more with its collections and the
 * index's size). Targets: probe p99.9 under 100 ms and no answer slower than 250 ms; the floor runs 4 phases.
 *
 * A warm-up phase comes first on each side and is reported, not judged.
 *
 * BENCH_PHASES (default 10), BENCH_PHASE_SECONDS (15), BENCH_WARMUP_SECONDS (10), BENCH_WINDOW_SECONDS (60),
 * BENCH_CONNECTIONS (24), BENCH_BATCH (100 events per request); production: BENCH_IDS (60 000 000),
 * BENCH_MINUTES (7, the least), BENCH_MAX_MINUTES (15).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { payloadTemplates, residentBytes, start, type Server } from './load.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PRODUCTION = process.env.BENCH_SIZE === 'production';
const PHASES = Number(process.env.BENCH_PHASES ?? 10);
const PHASE_SECONDS = Number(process.env.BENCH_PHASE_SECONDS ?? (PRODUCTION ? 30 : 15));
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 10);
const WINDOW_SECONDS = Number(process.env.BENCH_WINDOW_SECONDS ?? (PRODUCTION ? 24 * 3600 : 60));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 24);
const PER_BATCH = Number(process.env.BENCH_BATCH ?? 100);
const IDS = Number(process.env.BENCH_IDS ?? 60_000_000);
const MIN_MINUTES = Number(process.env.BENCH_MINUTES ?? 7);
const MAX_MINUTES = Number(process.env.BENCH_MAX_MINUTES ?? 15);
const AUTH = `Basic ${Buffer.from('dev:').toString('base64')}`;

interface Phase {
  endSec: number;
  eventsPerSec: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  non2xx: number;
  probe: { p50: number; p999: number; max: number; n: number };
  rssMiB: number | undefined;
  ids: number;
  indexMiB: number;
  windowSeconds: number;
  loopMaxMs: number;
  /** Collections of more than 50 ms in the phase, and the upper bound of the longest one's bucket (ms). */
  gcOver50: number;
  gcLongestMs: number;
  /** The log's durable writes of more than 50 ms, and the bound of the longest one's bucket (ms): the disk. */
  writesOver50: number;
  writeLongestMs: number;
}

/** A pause the collector logged (lib/pauses.ts), with when it happened in the run. */
interface LoggedPause {
  atSec: number;
  delayMs: number;
  gcMs: number;
  longestGcMs: number;
  longestGcKind?: string;
  dedupIds: number;
  dedupBytes: number;
  dedupCompacting: boolean;
  rssBytes: number;
  heapBytes: number;
}

const quantile = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0);

/** One small request every 20 ms, on a connection of its own, until stopped: its latencies in ms. */
function probe(url: string): { stop: () => Promise<number[]> } {
  const times: number[] = [];
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      const res = await fetch(`${url}/v1/track`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: AUTH },
        body: JSON.stringify({ event: 'Product Viewed', anonymousId: 'probe', messageId: `probe-${process.pid}-${Date.now()}-${n++}`, properties: { product_id: 'p' } }),
      }).catch(() => undefined);
      await res?.text();
      const ms = performance.now() - t0;
      times.push(res?.ok ? ms : Number.POSITIVE_INFINITY);
      await new Promise((r) => setTimeout(r, Math.max(0, 20 - ms)));
    }
  })();
  return { stop: async () => ((running = false), await loop, times) };
}

interface Scrape {
  ids: number;
  bytes: number;
  window: number;
  loopMax: number;
  /** Cumulative counts by bucket bound (seconds), all labels together: collections and the log's writes. */
  gc: Map<number, number>;
  logWrites: Map<number, number>;
}

/** A histogram's cumulative bucket counts by bound, summed over its labels. */
function buckets(text: string, name: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\} (\\S+)$`, 'gm'))) {
    const le = m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]);
    out.set(le, (out.get(le) ?? 0) + Number(m[2]));
  }
  return out;
}

async function scrape(url: string): Promise<Scrape> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  // The event loop's longest delay since the previous scrape (prom-client resets its histogram per scrape).
  return {
    ids: value('tracklake_dedup_ids'),
    bytes: value('tracklake_dedup_bytes'),
    window: value('tracklake_dedup_window_seconds'),
    loopMax: value('nodejs_eventloop_lag_max_seconds'),
    gc: buckets(text, 'nodejs_gc_duration_seconds'),
    logWrites: buckets(text, 'tracklake_log_write_seconds'),
  };
}

/** Observations over 50 ms between two scrapes of a histogram, and the bound of the longest one's bucket (ms). */
function slowBetween(before: Map<number, number>, after: Map<number, number>): { over50: number; longestMs: number } {
  const delta = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = delta(Number.POSITIVE_INFINITY);
  const longest = bounds.find((le) => delta(le) === total) ?? 0;
  return { over50: total - delta(0.05), longestMs: total === 0 ? 0 : longest * 1000 };
}

async function soak(server: Server, templates: string[], label: string, phases: number | 'production'): Promise<Phase[]> {
  const out: Phase[] = [];
  let n = 0;
  let sent = 0;
  const t0 = performance.now();
  let before = await scrape(server.url);
  const more = (i: number) => {
    if (phases !== 'production') return i <= phases;
    const minutes = (performance.now() - t0) / 60_000;
    return i === 0 || ((sent < IDS || minutes < MIN_MINUTES) && minutes < MAX_MINUTES);
  };
  // Phase 0 warms up (the JIT, the worker threads, the first log segments) and is left out of the verdict,
  // for the floor as for the collector.
  for (let i = 0; more(i); i++) {
    const p = probe(server.url);
    const seconds = i === 0 ? WARMUP_SECONDS : PHASE_SECONDS;
    const r = await autocannon({
      url: `${server.url}/v1/batch`,
      method: 'POST',
      connections: CONNECTIONS,
      duration: seconds,
      headers: { 'content-type': 'application/json', authorization: AUTH },
      requests: [{ setupRequest: (req) => ({ ...req, body: templates[n % templates.length]!.replaceAll('@@', `${label}${n++}`) }) }],
    });
    const probed = (await p.stop()).sort((a, b) => a - b);
    const s = await scrape(server.url);
    const gc = slowBetween(before.gc, s.gc);
    const writes = slowBetween(before.logWrites, s.logWrites);
    before = s;
    const rss = residentBytes(server.pid);
    sent += (r.requests.total - r.non2xx) * PER_BATCH;
    const phase: Phase = {
      endSec: (performance.now() - t0) / 1000,
      eventsPerSec: ((r.requests.total - r.non2xx) * PER_BATCH) / seconds,
      p50: r.latency.p50,
      p99: r.latency.p99,
      p999: r.latency.p99_9,
      max: r.latency.max,
      non2xx: r.non2xx,
      probe: { p50: quantile(probed, 0.5), p999: quantile(probed, 0.999), max: probed[probed.length - 1] ?? 0, n: probed.length },
      rssMiB: rss === undefined ? undefined : rss / 2 ** 20,
      ids: s.ids,
      indexMiB: s.bytes / 2 ** 20,
      windowSeconds: s.window,
      loopMaxMs: s.loopMax * 1000,
      gcOver50: gc.over50,
      gcLongestMs: gc.longestMs,
      writesOver50: writes.over50,
      writeLongestMs: writes.longestMs,
    };
    if (i > 0) out.push(phase);
    console.log(
      `${label} ${i === 0 ? 'warm-up ' : `phase ${String(i).padStart(2)}`} (${phase.endSec.toFixed(0).padStart(4)} s): ${Math.round(phase.eventsPerSec).toString().padStart(7)} events/s  ` +
        `latency p50 ${phase.p50} p99 ${phase.p99} p99.9 ${phase.p999} max ${phase.max} ms  ` +
        `probe p50 ${phase.probe.p50.toFixed(1)} p99.9 ${phase.probe.p999.toFixed(1)} max ${phase.probe.max.toFixed(1)} ms  ` +
        `loop max ${phase.loopMaxMs.toFixed(0)} ms  gc>50ms ${phase.gcOver50} (longest ≤ ${phase.gcLongestMs} ms)  log writes>50ms ${phase.writesOver50} (longest ≤ ${phase.writeLongestMs} ms)  ` +
        `rss ${phase.rssMiB?.toFixed(0) ?? '?'} MiB  index ${phase.ids} ids ${phase.indexMiB.toFixed(0)} MiB window ${phase.windowSeconds} s  non-2xx ${phase.non2xx}`,
    );
  }
  return out;
}

interface Run {
  phases: Phase[];
  peakRssMiB: number | undefined;
  pauses: LoggedPause[];
}

async function run(label: string, windowSeconds: number, templates: string[], phases: number | 'production'): Promise<Run> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `bench-soak-${label}-`));
  const pauses: LoggedPause[] = [];
  const t0 = performance.now();
  const onLog = (line: string) => {
    if (!line.includes('"event loop paused"')) return;
    pauses.push({ ...(JSON.parse(line) as LoggedPause), atSec: (performance.now() - t0) / 1000 });
  };
  try {
    // The real budget's default (a quarter of the machine's memory) unless the environment sets one.
    const env = { ...process.env, TRACKLAKE_DEDUP_WINDOW_HOURS: String(windowSeconds / 3600) };
    const server = await start([path.join(here, '../src/cli/main.js'), 'serve', '--port', '0', '--storage', path.join(dir, 'data'), '--wal-dir', path.join(dir, 'wal'), '--log-level', 'info', '--flush-interval-ms', '5000', '--no-api', '--no-scheduler'], dir, env, onLog);
    try {
      const result = await soak(server, templates, label, phases);
      const peak = residentBytes(server.pid, true);
      return { phases: result, peakRssMiB: peak === undefined ? undefined : peak / 2 ** 20, pauses };
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const templates = payloadTemplates(PER_BATCH);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const describe = (p: LoggedPause) =>
  `${p.delayMs} ms at ${p.atSec.toFixed(0)} s (collections in that second ${p.gcMs} ms, longest ${p.longestGcMs} ms ${p.longestGcKind ?? ''}; ` +
  `index ${p.dedupIds} ids, ${(p.dedupBytes / 2 ** 20).toFixed(0)} MiB${p.dedupCompacting ? ', compacting' : ''}; rss ${(p.rssBytes / 2 ** 20).toFixed(0)} MiB, JS heap ${(p.heapBytes / 2 ** 20).toFixed(0)} MiB)`;

if (PRODUCTION) {
  console.log(`bench:soak, production size — ${PHASE_SECONDS} s phases until ${IDS} ids are sent (${MIN_MINUTES}–${MAX_MINUTES} min), duplicate window ${WINDOW_SECONDS / 3600} h, default budget, ${CONNECTIONS} connections, ${PER_BATCH} events per request, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`);
  const collector = await run('dedup', WINDOW_SECONDS, templates, 'production');
  const floor = await run('floor', 0, templates, 4);
  const worstProbeP999 = Math.max(...collector.phases.map((p) => p.probe.p999));
  const worstMax = Math.max(...collector.phases.map((p) => Math.max(p.max, p.probe.max)));
  const longest = collector.pauses.reduce<LoggedPause | undefined>((a, p) => (!a || p.delayMs > a.delayMs ? p : a), undefined);
  console.log(`floor (dedup off): median phase p99.9 ${median(floor.phases.map((p) => p.p999))} ms, probe's worst p99.9 ${Math.max(...floor.phases.map((p) => p.probe.p999)).toFixed(1)} max ${Math.max(...floor.phases.map((p) => p.probe.max)).toFixed(1)} ms, events/s ${Math.round(median(floor.phases.map((p) => p.eventsPerSec)))}, peak rss ${floor.peakRssMiB?.toFixed(0)} MiB`);
  console.log(`collector: ${collector.phases.reduce((a, p) => a + p.eventsPerSec * PHASE_SECONDS, 0).toFixed(0)} events in ${collector.phases.length} phases; index peak ${Math.max(...collector.phases.map((p) => p.ids))} ids, ${Math.max(...collector.phases.map((p) => p.indexMiB)).toFixed(0)} MiB; peak resident ${collector.peakRssMiB?.toFixed(0)} MiB`);
  console.log(`collector: pauses of 100 ms or more: ${collector.pauses.length}; longest ${longest ? describe(longest) : 'none'}`);
  for (const p of collector.pauses) console.log(`  pause ${describe(p)}`);
  const okP999 = worstProbeP999 < 100;
  const okMax = worstMax < 250;
  console.log(`collector: probe's worst phase p99.9 ${worstProbeP999.toFixed(1)} ms (target < 100 ms) ${okP999 ? 'PASS' : 'FAIL'}; slowest answer ${worstMax.toFixed(1)} ms (target < 250 ms) ${okMax ? 'PASS' : 'FAIL'}`);
  process.exitCode = okP999 && okMax ? 0 : 1;
} else {
  console.log(`bench:soak — a ${WARMUP_SECONDS} s warm-up, then ${PHASES} phases of ${PHASE_SECONDS} s, duplicate window ${WINDOW_SECONDS} s, ${CONNECTIONS} connections, ${PER_BATCH} events per request, ${os.cpus().length} cores`);
  const collector = (await run('dedup', WINDOW_SECONDS, templates, PHASES)).phases;
  const floor = (await run('floor', 0, templates, PHASES)).phases;
  const floorP999 = median(floor.map((p) => p.p999));
  const worstP999 = Math.max(...collector.map((p) => p.p999));
  const worstMax = Math.max(...collector.map((p) => p.max));
  const worstProbe = Math.max(...collector.map((p) => p.probe.max));
  const peakIds = Math.max(...collector.map((p) => p.ids));
  const okP999 = worstP999 <= 2 * floorP999;
  const okMax = worstMax < 250;
  console.log(`floor (dedup off): median phase p99.9 ${floorP999} ms, events/s ${Math.round(median(floor.map((p) => p.eventsPerSec)))}`);
  console.log(`collector: worst phase p99.9 ${worstP999} ms (${(worstP999 / floorP999).toFixed(2)}× the floor's; target ≤ 2×) ${okP999 ? 'PASS' : 'FAIL'}`);
  console.log(`collector: worst max latency ${worstMax} ms (target < 250 ms) ${okMax ? 'PASS' : 'FAIL'}; probe's worst ${worstProbe.toFixed(1)} ms; index peak ${peakIds} ids`);
  process.exitCode = okP999 && okMax ? 0 : 1;
}
