/** `tracklake simulate`: sends simulated marketplace traffic to a collector over its HTTP API. */
import { simulateTraffic } from '../segment/simulator.js';

export interface SimulateOptions {
  url: string;
  writeKey: string;
  events: number;
  rate?: number;
  days: number;
  batchSize: number;
  concurrency: number;
  seed: number;
  endMs: number;
  planViolations?: number;
  /** The clock batches' sentAt is read from (tests pin it; default the system's). */
  now?: () => number;
}

export async function simulate(o: SimulateOptions, out: NodeJS.WritableStream = process.stderr): Promise<{ sent: number; failed: number }> {
  const endpoint = new URL('/v1/batch', o.url).toString();
  const auth = `Basic ${Buffer.from(`${o.writeKey}:`).toString('base64')}`;
  const gen = simulateTraffic({ events: o.events, days: o.days, endMs: o.endMs, seed: o.seed, planViolations: o.planViolations });
  let sent = 0;
  let failed = 0;
  const started = Date.now();
  const nextBatch = (): Record<string, unknown>[] => {
    const batch: Record<string, unknown>[] = [];
    for (let r = gen.next(); !r.done; r = gen.next()) {
      batch.push(r.value);
      if (batch.length >= o.batchSize) break;
    }
    return batch;
  };
  const worker = async () => {
    for (let batch = nextBatch(); batch.length > 0; batch = nextBatch()) {
      if (o.rate) {
        const due = started + ((sent + batch.length) / o.rate) * 1000;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(endpoint, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ batch, sentAt: new Date((o.now ?? Date.now)()).toISOString() }) }).catch((e: Error) => ({ status: 0, text: async () => e.message }));
        if (res.status === 200) {
          sent += batch.length;
          break;
        }
        if ((res.status === 503 || res.status === 0) && attempt < 5) {
          await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
          continue;
        }
        failed += batch.length;
        out.write(`batch refused (${res.status}): ${(await res.text()).slice(0, 300)}\n`);
        break;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const secs = (Date.now() - started) / 1000;
  out.write(`sent ${sent} events (${failed} failed) in ${secs.toFixed(1)} s, ${Math.round(sent / Math.max(secs, 0.001))} events/s\n`);
  return { sent, failed };
}
