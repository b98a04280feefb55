/**
 * A collector's view of the regulations: it reads them from the bucket every privacyRefreshSeconds (and at
 * once on SIGHUP and at start-up), puts the suppression lists in force at the door, and hands the shipper
 * the filter for what was logged before (privacy/ship-filter.ts). A read that fails keeps the lists in
 * force and is tried again; shipping waits until this node has read the regulations once.
 */
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { ObjectStore } from '../storage/store.js';
import { RegulationReader, statesByTenant } from './regulations.js';
import { loadPrivacySecret } from './secret.js';
import { ShipFilter } from './ship-filter.js';
import type { SuppressionLists } from './subjects.js';

export interface PrivacyWatcherOptions {
  store: ObjectStore;
  configuredSecret: string | undefined;
  clock: Clock;
  logger: Logger;
  refreshMs: number;
  /** Puts the lists in force at the door; resolves once no request is prepared with the old ones. */
  apply(lists: SuppressionLists): Promise<void>;
}

export class PrivacyWatcher {
  private readonly reader: RegulationReader;
  private secret: string | undefined;
  private shipFilter: ShipFilter | undefined;
  private loaded = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** The read after the one running, for calls made during it. */
  private next: Promise<void> | undefined;

  constructor(private readonly o: PrivacyWatcherOptions) {
    this.reader = new RegulationReader(o.store);
  }

  /**
   * Reads the regulations now: what was filed before the call is in force when it resolves. A read already
   * under way may have listed the bucket before that, so a call during one gets the next read, which every
   * call meanwhile shares (a SIGHUP storm reads twice, not once per signal). Throws when storage cannot be read.
   */
  refresh(): Promise<void> {
    if (this.running === undefined) {
      this.running = this.read().finally(() => (this.running = undefined));
      return this.running;
    }
    this.next ??= this.running.catch(() => undefined).then(() => {
      this.next = undefined;
      return this.refresh();
    });
    return this.next;
  }

  private async read(): Promise<void> {
    this.secret ??= await loadPrivacySecret(this.o.configuredSecret, this.o.store);
    const { byTenant, changed } = await this.reader.read();
    if (this.loaded && !changed) return;
    const states = statesByTenant(byTenant);
    const lists: Record<string, string[]> = {};
    for (const [tenant, state] of states) if (state.suppressed.size > 0) lists[tenant] = [...state.suppressed.keys()];
    await this.o.apply({ secret: this.secret, byTenant: lists });
    // From this instant every request is judged by the door with these lists; older records by the shipper.
    this.shipFilter = new ShipFilter(this.secret, states, this.o.clock.now());
    if (this.loaded) this.o.logger.info({ suppressed: Object.values(lists).reduce((n, l) => n + l.length, 0) }, 'privacy regulations reloaded');
    this.loaded = true;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.refresh().catch((e: Error) => this.o.logger.warn({ err: e.message }, 'privacy regulations not read; the lists in force stay, will retry'));
    }, this.o.refreshMs);
    this.timer.unref();
  }

  /** For the shipper: resolves once the regulations were read (reading them now if they never were). */
  async ready(): Promise<void> {
    if (!this.loaded) await this.refresh();
  }

  filter(): ShipFilter | undefined {
    return this.shipFilter;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/**
 * The regulations in force as a filter, for a command that sends or replays what was logged before
 * (`plan replay`, `destinations replay`): every record is looked at, as if the lists had just changed.
 */
export async function regulationFilter(store: ObjectStore, configuredSecret: string | undefined): Promise<ShipFilter> {
  const secret = await loadPrivacySecret(configuredSecret, store);
  return new ShipFilter(secret, statesByTenant((await new RegulationReader(store).read()).byTenant), Infinity);
}
