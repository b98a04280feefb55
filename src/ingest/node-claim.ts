/**
 * One running collector per node id on a bucket. A node's objects are named `<node>-<sequence>`, so two
 * collectors run with one id (a copied configuration, one TRACKLAKE_NODE_ID for every replica of a
 * deployment) overwrite each other's tracking files. Each collector keeps `nodes/<node>.json` in the bucket:
 * its log's own id (wal.ts, logId), its host and process, refreshed every HEARTBEAT_MS. Another log's entry
 * seen less than STALE_MS ago means another collector runs with this id: at start that is refused (exit 2);
 * found while running (two started at one moment both found the id free), shipping waits (the log keeps
 * everything) and /ready says why, until the other one's entry is STALE_MS old.
 *
 * A restart after a crash is the same log on the same host, so it is never refused; a clean stop removes the
 * entry, so a node replaced on a new disk starts at once. One whose log folder was lost in a crash, or
 * whose disk was moved to another host, waits STALE_MS.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { keys } from '../lake/layout.js';
import type { ObjectStore } from '../storage/store.js';

/** How often a collector refreshes its entry and looks for another's; the first look is FIRST_LOOK_MS after start. */
export const HEARTBEAT_MS = 15_000;
const FIRST_LOOK_MS = 2_000;
/** An entry not refreshed for this long is a collector gone (four heartbeats missed). */
export const STALE_MS = 60_000;

export interface NodeEntry {
  version: 1;
  node: string;
  log: string;
  host: string;
  pid: number;
  /** When it was last refreshed (epoch ms, by the writer's clock). */
  at: number;
}

function parseEntry(body: Buffer | undefined): NodeEntry | undefined {
  if (!body) return undefined;
  try {
    const e = JSON.parse(body.toString('utf8')) as Partial<NodeEntry>;
    return e.version === 1 && typeof e.log === 'string' && typeof e.at === 'number' ? (e as NodeEntry) : undefined;
  } catch {
    return undefined;
  }
}

/** Another collector's entry, as a sentence for the logs, /ready and start-up's refusal. */
export function describeHolder(e: NodeEntry, now: number): string {
  return `node id "${e.node}" is in use by another collector (host ${e.host}, process ${e.pid}, log ${e.log}, seen ${Math.max(0, Math.round((now - e.at) / 1000))} s ago)`;
}

export class NodeClaim {
  /** The other collector holding the id, when the last look found one. */
  private holder: NodeEntry | undefined;
  /** Whether a look found the id this log's (shipping waits for it). */
  private held = false;
  private waiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private looking: Promise<unknown> | undefined;

  constructor(private readonly o: { store: ObjectStore; clock: Clock; logger: Logger; node: string; log: string }) {}

  /**
   * Reads the entry: the other collector's when another log (or this one on another host) refreshed it less
   * than STALE_MS ago, else this log's entry is written and undefined returned. Storage errors are thrown
   * (nothing is decided).
   */
  async look(): Promise<NodeEntry | undefined> {
    const key = keys.node(this.o.node);
    const now = this.o.clock.now();
    const entry = parseEntry(await this.o.store.get(key));
    if (entry && !this.mine(entry) && now - entry.at < STALE_MS) {
      if (this.holder === undefined) this.o.logger.error({ holder: entry }, `${describeHolder(entry, now)}: shipping waits until it stops (give each collector its own nodeId)`);
      this.holder = entry;
      this.held = false;
      return entry;
    }
    const mine: NodeEntry = { version: 1, node: this.o.node, log: this.o.log, host: os.hostname(), pid: process.pid, at: now };
    await this.o.store.put(key, JSON.stringify(mine));
    if (this.holder) this.o.logger.info({ node: this.o.node }, 'node id free again: shipping resumes');
    this.holder = undefined;
    this.held = true;
    for (const w of this.waiters.splice(0)) w();
    return undefined;
  }

  /**
   * This log's own entry on this host. The same log on another host is a copy of the log folder on another
   * machine (a disk image made after a first run holds the folder, its node id and its log id alike).
   */
  private mine(e: NodeEntry): boolean {
    return e.log === this.o.log && e.host === os.hostname();
  }

  /** Resolves once the last look found the id this log's. */
  ready(): Promise<void> {
    return this.held ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * What /ready shows: the other collector holding the id, else true (an id not yet looked at because storage
   * is down is the storage check's to report: shipping waits on both alike).
   */
  status(): true | string {
    return this.holder ? describeHolder(this.holder, this.o.clock.now()) : true;
  }

  start(): void {
    const tick = () => {
      this.looking = this.look().catch((e: Error) => this.o.logger.warn({ err: e.message }, 'node id entry not refreshed; will retry'));
      this.timer = setTimeout(tick, HEARTBEAT_MS);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, FIRST_LOOK_MS);
    this.timer.unref();
  }

  /** Stops refreshing and removes this log's entry, so a collector started next with this id need not wait. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.looking;
    if (!this.held) return;
    const entry = parseEntry(await this.o.store.get(keys.node(this.o.node)).catch(() => undefined));
    if (entry && this.mine(entry)) await this.o.store.delete(keys.node(this.o.node)).catch(() => undefined);
  }
}
