/**
 * `tracklake destinations status` and `tracklake destinations replay`: what each destination of this node
 * has done and still owes, read from the node's state folder and the bucket (a running collector need not
 * be asked: its cursors are at most a second old), and sending a destination's dead letters again.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { s3Settings } from '../config/config.js';
import { type DeadLetter, deadLetterPrefix, replayDeadLetters, type ReplayReport } from '../forward/deadletter.js';
import { forwardDir } from '../forward/destinations.js';
import { senderFor } from '../forward/thread.js';
import { lagBytes, lagSeconds, readState } from '../forward/forwarder.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { isDay } from '../lib/dates.js';
import { ConfigError } from '../lib/errors.js';
import { regulationFilter } from '../privacy/watch.js';
import { openStore } from '../storage/open.js';
import { makeLogger } from './common.js';

const SEGMENT = /^(?:seg|shipped)-(\d{12})\.log$/;

export interface DestinationStatus {
  name: string;
  type: string;
  delivered: number;
  retried: number;
  deadLettered: number;
  handedOver: number;
  /** Bytes of this node's log the destination has not read. */
  lagBytes: number;
  /** While it has log left to read, the age of the message it is at (as tracklake_forward_lag_seconds). */
  lagSeconds: number;
  backlogObjects: number;
  deadLetterFiles: number;
  lastDeliveredAt: string | null;
  failing: { error: string; since: string; attempts: number } | null;
}

export async function destinationsStatus(config: Config, clock: Clock = systemClock): Promise<DestinationStatus[]> {
  const store = await openStore(config.storage, s3Settings(config));
  const segments = await fs.readdir(config.walDir).catch(() => [] as string[]);
  const sizes = new Map<number, number>();
  for (const name of segments) {
    const m = SEGMENT.exec(name);
    if (!m) continue;
    // A running collector renames a segment as it ships (seg- to shipped-) and removes it once nobody needs
    // it: one renamed since the listing is found by its other name, one removed holds nothing to count.
    const other = name.startsWith('seg-') ? name.replace('seg-', 'shipped-') : name.replace('shipped-', 'seg-');
    let size: number | undefined;
    for (const n of [name, other]) {
      size = await fs.stat(path.join(config.walDir, n)).then((st) => st.size, (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (size !== undefined) break;
    }
    if (size !== undefined) sizes.set(Number(m[1]), size);
  }
  const out: DestinationStatus[] = [];
  for (const d of config.destinations) {
    const s = await readState(forwardDir(config.stateDir), d.name);
    const bytes = s ? lagBytes(s.cursor, sizes) : 0;
    out.push({
      name: d.name,
      type: d.type,
      delivered: s?.delivered ?? 0,
      retried: s?.retried ?? 0,
      deadLettered: s?.deadLettered ?? 0,
      handedOver: s?.handedOver ?? 0,
      lagBytes: bytes,
      lagSeconds: s ? lagSeconds(s, bytes, clock.now()) : 0,
      backlogObjects: (await store.list(`destinations/${d.name}/backlog/`)).length,
      deadLetterFiles: (await store.list(deadLetterPrefix(d.name))).length,
      lastDeliveredAt: s?.lastDeliveredAt ? new Date(s.lastDeliveredAt).toISOString() : null,
      failing: s?.failing ? { ...s.failing, since: new Date(s.failing.since).toISOString() } : null,
    });
  }
  return out;
}

export function formatStatus(rows: readonly DestinationStatus[]): string {
  if (rows.length === 0) return 'no destinations configured (README, "Destinations")\n';
  return rows.map((r) => [
    `${r.name} (${r.type}): ${r.failing ? `FAILING since ${r.failing.since} (${r.failing.attempts} attempts): ${r.failing.error}` : 'ok'}`,
    `  delivered ${r.delivered}, retried ${r.retried}, dead-lettered ${r.deadLettered} (${r.deadLetterFiles} files), handed over ${r.handedOver}`,
    `  lag ${r.lagSeconds.toFixed(1)} s, ${r.lagBytes} bytes of the log, ${r.backlogObjects} backlog objects in the bucket; last delivery ${r.lastDeliveredAt ?? 'never'}`,
  ].join('\n')).join('\n') + '\n';
}

/** A forwarded message's receivedAt (the collector sets it); 0 when unreadable, which any deletion covers. */
function receivedAtOf(json: Buffer): number {
  try {
    return Date.parse(String((JSON.parse(json.toString('utf8')) as { receivedAt?: unknown }).receivedAt)) || 0;
  } catch {
    return 0;
  }
}

export async function destinationsReplay(config: Config, name: string, days: { from?: string; to?: string }): Promise<ReplayReport> {
  const d = config.destinations.find((x) => x.name === name);
  if (!d) throw new ConfigError('destination', `no destination named "${name}" is configured (${config.destinations.map((x) => x.name).join(', ') || 'none'})`);
  for (const [flag, v] of [['--from', days.from], ['--to', days.to]] as const) if (v === undefined || !isDay(v)) throw new ConfigError(flag, 'a day, YYYY-MM-DD');
  if (days.from! > days.to!) throw new ConfigError('--from', 'is after --to');
  const store = await openStore(config.storage, s3Settings(config));
  const sender = senderFor(d, systemClock, config.events);
  try {
    // A suppressed or erased subject's messages stay out, as the collector leaves them out when it forwards.
    const filter = await regulationFilter(store, config.privacySecret);
    const leftOut = (l: DeadLetter) => filter.dropsMessage(receivedAtOf(l.json), l.tenant, l.json);
    return await replayDeadLetters(store, d, sender, { from: days.from!, to: days.to! }, makeLogger(config.logLevel), () => systemClock.now(), leftOut);
  } finally {
    await sender.close();
  }
}
