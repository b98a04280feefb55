/**
 * A node's destinations: one forwarder per configured destination, each holding the log segments it still
 * needs. Each node forwards what it received. A destination removed from the configuration releases its
 * hold at the next start (its cursor file is removed, and the log says so).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Destination } from '../config/destinations.js';
import type { WriteAheadLog } from '../ingest/wal.js';
import type { Clock } from '../lib/clock.js';
import { routeOf } from '../lib/egress.js';
import type { Metrics } from '../lib/metrics.js';
import type { PrivacyGate } from '../privacy/ship-filter.js';
import { makeDir } from '../storage/local.js';
import type { ObjectStore } from '../storage/store.js';
import { Forwarder } from './forwarder.js';
import { ThreadedSender } from './thread.js';

export interface DestinationsDeps {
  wal: WriteAheadLog;
  store: ObjectStore;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** The node's state folder: cursors live in `<stateDir>/forward`. */
  stateDir: string;
  /** The configured event-name mappings (the Postgres destination maps messages as the collector does). */
  events: Readonly<Record<string, string>>;
  /** The privacy filter in force (what the shipper leaves out is not forwarded either). */
  privacy?: PrivacyGate;
}

export const forwardDir = (stateDir: string) => path.join(stateDir, 'forward');

/** The configured destinations as the readers of a collector's log (ingest/node.ts's `readers`). */
export function destinationReaders(config: Config, deps: { store: ObjectStore; clock: Clock; logger: Logger }) {
  return (wal: WriteAheadLog, metrics: Metrics, privacy: PrivacyGate) => Destinations.open(config.destinations, { ...deps, wal, metrics, privacy, stateDir: config.stateDir, events: config.events });
}

export class Destinations {
  private constructor(readonly forwarders: Forwarder[]) {}

  /** Reads every destination's cursor and puts its hold on the log (before anything ships, so nothing is released early). */
  static async open(destinations: readonly Destination[], deps: DestinationsDeps): Promise<Destinations> {
    const dir = forwardDir(deps.stateDir);
    await makeDir(dir);
    const names = new Set(destinations.map((d) => d.name));
    for (const file of await fs.readdir(dir)) {
      const name = file.endsWith('.json') ? file.slice(0, -'.json'.length) : undefined;
      if (name === undefined || names.has(name)) continue;
      await fs.rm(path.join(dir, file), { force: true });
      deps.logger.warn({ destination: name }, 'destination no longer configured: its cursor is removed and the log no longer kept for it');
    }
    const forwarders: Forwarder[] = [];
    for (const d of destinations) {
      // Where an HTTP receiver is reached through a proxy (HTTPS_PROXY / NO_PROXY), the log says so once.
      if (d.type !== 'postgres') {
        const route = routeOf(d.url);
        deps.logger.info({ destination: d.name, route }, `destination reached ${route}`);
      }
      const f = new Forwarder(d, { ...deps, dir, sender: new ThreadedSender(d, deps.events) });
      await f.open();
      deps.wal.addHold(f);
      forwarders.push(f);
    }
    // Every destination's series from the start (at 0), so a dashboard can tell "none yet" from "no data".
    for (const d of destinations) {
      for (const c of [deps.metrics.forwardDelivered, deps.metrics.forwardRetried, deps.metrics.forwardDeadLettered, deps.metrics.forwardHandedOver, deps.metrics.forwardLeftOut]) c.inc({ destination: d.name }, 0);
    }
    deps.metrics.forwardState = () => forwarders.map((f) => ({ destination: f.d.name, lagSeconds: f.lag().seconds, lagBytes: f.lag().bytes }));
    await deps.wal.collect();
    return new Destinations(forwarders);
  }

  start(): void {
    for (const f of this.forwarders) f.start();
  }

  /** The destinations whose last attempt failed, by name: for /ready's checks (ingest stays ready). */
  failing(): string[] {
    return this.forwarders.filter((f) => f.status.failing !== null).map((f) => f.d.name);
  }

  /** Stops every forwarder where it is (a batch in flight finishes or is sent again after the restart). */
  async stop(): Promise<void> {
    await Promise.all(this.forwarders.map((f) => f.stop()));
    await Promise.all(this.forwarders.map((f) => f.closeSender()));
  }
}
