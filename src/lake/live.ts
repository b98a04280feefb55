/**
 * Live counts: how many messages each collector acknowledged per tenant and minute over the last half
 * hour, counted at the acknowledgement (so before shipping) and written by each collector to
 * `live/<node>.json` every few seconds (`liveIntervalMs`). A read node sums the files of every collector on
 * the bucket: the dashboard's live panel sees all of them, at most one interval late. The counter lives in
 * memory; at start a collector takes its own file back, so a restart keeps the half hour.
 */
export const LIVE_MINUTES = 30;
const MINUTE = 60_000;

export interface LiveFile {
  version: 1;
  node: string;
  /** When it was written (epoch ms). */
  at: number;
  /** tenant → [minute start (epoch ms), messages]. */
  minutes: Record<string, Array<[number, number]>>;
}

/** The file, or undefined when it is not one; pairs that are not two finite numbers are left out. */
export function parseLiveFile(body: Buffer | undefined): LiveFile | undefined {
  if (!body) return undefined;
  let f: unknown;
  try {
    f = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof f !== 'object' || f === null) return undefined;
  const { version, node, at, minutes } = f as Record<string, unknown>;
  if (version !== 1 || typeof node !== 'string' || typeof at !== 'number' || typeof minutes !== 'object' || minutes === null) return undefined;
  const out: LiveFile['minutes'] = {};
  for (const [tenant, pairs] of Object.entries(minutes)) {
    if (!Array.isArray(pairs)) continue;
    out[tenant] = pairs.filter((p): p is [number, number] => Array.isArray(p) && p.length === 2 && Number.isFinite(p[0]) && Number.isFinite(p[1]));
  }
  return { version: 1, node, at, minutes: out };
}

export class LiveCounter {
  private readonly byTenant = new Map<string, Map<number, number>>();
  /** Whether anything was counted since the last snapshot taken for writing. */
  changed = false;

  add(tenant: string, messages: number, at: number): void {
    if (messages <= 0) return;
    let minutes = this.byTenant.get(tenant);
    if (!minutes) this.byTenant.set(tenant, (minutes = new Map()));
    const minute = at - (at % MINUTE);
    const n = minutes.get(minute);
    if (n === undefined) {
      // A new minute: the tenant's minutes past the window go, so a collector that never writes its file
      // (liveIntervalMs 0) or has no read side keeps at most LIVE_MINUTES + 1 counts per tenant.
      for (const m of minutes.keys()) if (m <= minute - LIVE_MINUTES * MINUTE) minutes.delete(m);
    }
    minutes.set(minute, (n ?? 0) + messages);
    this.changed = true;
  }

  /** The counts of the last LIVE_MINUTES minutes, every tenant's or `only`'s (older ones are dropped). */
  snapshot(now: number, only?: string): LiveFile['minutes'] {
    const oldest = now - (now % MINUTE) - (LIVE_MINUTES - 1) * MINUTE;
    const out: LiveFile['minutes'] = {};
    for (const [tenant, minutes] of this.byTenant) {
      for (const m of minutes.keys()) if (m < oldest) minutes.delete(m);
      if (minutes.size === 0) this.byTenant.delete(tenant);
      else if (only === undefined || tenant === only) out[tenant] = [...minutes].sort((a, b) => a[0] - b[0]);
    }
    return out;
  }

  /** Counts of an earlier run of this node (its file), added to what this run counted. */
  restore(f: LiveFile): void {
    for (const [tenant, minutes] of Object.entries(f.minutes)) {
      for (const [minute, n] of minutes) this.add(tenant, n, minute);
    }
  }
}

/** Sums the files' counts of one tenant into the LIVE_MINUTES minutes ending at `now`, oldest first. */
export function liveSeries(files: readonly LiveFile[], tenant: string, now: number): Array<{ minute: number; events: number }> {
  const last = now - (now % MINUTE);
  const series = Array.from({ length: LIVE_MINUTES }, (_, i) => ({ minute: last - (LIVE_MINUTES - 1 - i) * MINUTE, events: 0 }));
  for (const f of files) {
    for (const [minute, n] of (Object.hasOwn(f.minutes, tenant) ? f.minutes[tenant] : undefined) ?? []) {
      const i = LIVE_MINUTES - 1 - (last - minute) / MINUTE;
      if (Number.isInteger(i) && i >= 0 && i < LIVE_MINUTES) series[i]!.events += n;
    }
  }
  return series;
}
