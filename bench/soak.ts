/**
 * bench:soak — the collector under steady load for long enough that its duplicate index grows through many
 * doublings and then expires a whole (shortened) window over and over, measured phase by phase; then the same
 * load against the same collector with duplicate detection off, as the floor.
 *
 * Each phase reports the load's events/s and request latency (p50, p99, p99.9, max, from autocannon), a
 * probe's latency (one small request every 20 ms on its own connection: what a browser sees while the
 * collector is busy), the collector's resident memory and its index (ids, bytes, effective window).
 * Target: in every phase, p99.9 within 2× of the floor's and max latency under 250 ms.
 *
 * A warm-up phase comes first on each side and is reported, not judged.
 *
 * BENCH_PHASES (default 10), BENCH_PHASE_SECONDS (15), BENCH_WARMUP_SECONDS (10), BENCH_WINDOW_SECONDS (60),
 * BENCH_CONNECTIONS (24), BENCH_BATCH (100 events per request).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { payloadTemplates, residentBytes, start, type Server } from './load.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PHASES = Number(process.env.BENCH_PHASES ?? 10);
const PHASE_SECONDS = Number(process.env.BENCH_PHASE_SECONDS ?? 15);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 10);
const WINDOW_SECONDS = Number(process.env.BENCH_WINDOW_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 24);
const PER_BATCH = Number(process.env.BENCH_BATCH ?? 100);
const AUTH = `Basic ${Buffer.from('dev:').toString('base64')}`;

interface Phase {
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

async function scrape(url: string): Promise<{ ids: number; bytes: number; window: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { ids: value('tracklake_dedup_ids'), bytes: value('tracklake_dedup_bytes'), window: value('tracklake_dedup_window_seconds') };
}

async function soak(server: Server, templates: string[], label: string): Promise<Phase[]> {
  const phases: Phase[] = [];
  let n = 0;
  // Phase 0 warms up (the JIT, the worker threads, the first log segments) and is left out of the verdict,
  // for the floor as for the collector.
  for (let i = 0; i <= PHASES; i++) {
    const p = probe(server.url);
    const r = await autocannon({
      url: `${server.url}/v1/batch`,
      method: 'POST',
      connections: CONNECTIONS,
      duration: i === 0 ? WARMUP_SECONDS : PHASE_SECONDS,
      headers: { 'content-type': 'application/json', authorization: AUTH },
      requests: [{ setupRequest: (req) => ({ ...req, body: templates[n % templates.length]!.replaceAll('@@', `${label}${n++}`) }) }],
    });
    const probed = (await p.stop()).sort((a, b) => a - b);
    const s = await scrape(server.url);
    const rss = residentBytes(server.pid);
    const phase: Phase = {
      eventsPerSec: ((r.requests.total - r.non2xx) * PER_BATCH) / (i === 0 ? WARMUP_SECONDS : PHASE_SECONDS),
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
    };
    if (i > 0) phases.push(phase);
    console.log(
      `${label} ${i === 0 ? 'warm-up ' : `phase ${String(i).padStart(2)}`}: ${Math.round(phase.eventsPerSec).toString().padStart(7)} events/s  ` +
        `latency p50 ${phase.p50} p99 ${phase.p99} p99.9 ${phase.p999} max ${phase.max} ms  ` +
        `probe p50 ${phase.probe.p50.toFixed(1)} p99.9 ${phase.probe.p999.toFixed(1)} max ${phase.probe.max.toFixed(1)} ms  ` +
        `rss ${phase.rssMiB?.toFixed(0) ?? '?'} MiB  index ${phase.ids} ids ${phase.indexMiB.toFixed(0)} MiB window ${phase.windowSeconds} s  non-2xx ${phase.non2xx}`,
    );
  }
  return phases;
}

async function run(label: string, windowSeconds: number, templates: string[]): Promise<Phase[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `bench-soak-${label}-`));
  try {
    const env = { ...process.env, TRACKLAKE_DEDUP_WINDOW_HOURS: String(windowSeconds / 3600) };
    const server = await start([path.join(here, '../src/cli/main.js'), 'serve', '--port', '0', '--storage', path.join(dir, 'data'), '--wal-dir', path.join(dir, 'wal'), '--log-level', 'info', '--flush-interval-ms', '5000', '--no-api', '--no-scheduler'], dir, env);
    try {
      return await soak(server, templates, label);
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const templates = payloadTemplates(PER_BATCH);
console.log(`bench:soak — a ${WARMUP_SECONDS} s warm-up, then ${PHASES} phases of ${PHASE_SECONDS} s, duplicate window ${WINDOW_SECONDS} s, ${CONNECTIONS} connections, ${PER_BATCH} events per request, ${os.cpus().length} cores`);
const collector = await run('dedup', WINDOW_SECONDS, templates);
const floor = await run('floor', 0, templates);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
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
