/** `tracklake regulate` and `tracklake regulations list|show|run`: privacy regulations for operators. */
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { jobResources, s3Settings } from '../config/config.js';
import { forwardedCopies } from '../forward/erase.js';
import { metricSet } from '../jobs/aggregates/metrics.js';
import type { NightlyTask } from '../jobs/scheduler.js';
import { systemClock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { runErasure, type ErasureOptions } from '../privacy/erase.js';
import { parseRegulationRequest, Regulations, type RegulationType } from '../privacy/regulations.js';
import { loadPrivacySecret } from '../privacy/secret.js';
import { regulationView } from '../query/regulations.js';
import { openStore } from '../storage/open.js';
import type { ObjectStore } from '../storage/store.js';
import { configuredTenant } from './common.js';

async function open(config: Config) {
  const store = await openStore(config.storage, s3Settings(config));
  const secret = await loadPrivacySecret(config.privacySecret, store);
  return { store, secret, regulations: new Regulations(store, secret, systemClock) };
}

export interface RegulateOptions {
  tenant?: string;
  delete?: boolean;
  suppress?: boolean;
  unsuppress?: boolean;
  user?: string[];
  device?: string[];
}

export async function regulateCommand(config: Config, o: RegulateOptions): Promise<number> {
  const tenant = configuredTenant(config, o.tenant);
  const what = [o.delete && 'delete', o.suppress && 'suppress', o.unsuppress && 'unsuppress'].filter(Boolean);
  if (what.length === 0 || (o.unsuppress && what.length > 1)) throw new ConfigError('regulate', 'give --delete, --suppress (both together: suppress with delete) or --unsuppress');
  const type: RegulationType = o.unsuppress ? 'UNSUPPRESS' : o.delete && o.suppress ? 'SUPPRESS_WITH_DELETE' : o.delete ? 'DELETE' : 'SUPPRESS';
  if ((o.user?.length ?? 0) > 0 === (o.device?.length ?? 0) > 0) throw new ConfigError('user', 'give --user ID... or --device ID... (one kind per regulation)');
  const parsed = parseRegulationRequest({ regulationType: type, subjectType: o.user?.length ? 'USER_ID' : 'ANONYMOUS_ID', subjectIds: o.user?.length ? o.user : o.device });
  if (!parsed.ok) throw new ConfigError(parsed.field === 'subjectIds' || parsed.field.startsWith('subjectIds[') ? (o.user?.length ? 'user' : 'device') : parsed.field, parsed.message);
  const { regulations } = await open(config);
  const reg = await regulations.create(tenant, parsed.value);
  process.stdout.write(`${JSON.stringify(regulationView(reg))}\n`);
  return 0;
}

export async function regulationsList(config: Config, o: { tenant?: string }): Promise<number> {
  const { regulations } = await open(config);
  const tenant = o.tenant === undefined ? undefined : configuredTenant(config, o.tenant);
  for (const r of await regulations.list(tenant)) process.stdout.write(`${JSON.stringify({ tenant: r.tenant, ...regulationView(r) })}\n`);
  return 0;
}

export async function regulationsShow(config: Config, o: { tenant?: string; id: string }): Promise<number> {
  const { regulations } = await open(config);
  const reg = await regulations.get(configuredTenant(config, o.tenant), o.id);
  if (!reg) throw new ConfigError('id', `no regulation ${o.id} for tenant ${o.tenant}`);
  process.stdout.write(`${JSON.stringify(regulationView(reg), null, 2)}\n`);
  return 0;
}

function erasureOptions(config: Config, store: ObjectStore, secret: string, logger: Logger): ErasureOptions {
  return {
    ...jobResources(config), store, secret, logger, clock: systemClock, metrics: metricSet(config.metrics),
    sessions: { inactivityMinutes: config.inactivityMinutes, includeBots: config.sessionsIncludeBots, lookbackDays: config.lookbackDays },
    elsewhere: [forwardedCopies(config.destinations, store, logger)],
  };
}

export async function regulationsRun(config: Config, o: { id?: string }, logger: Logger): Promise<number> {
  const { store, secret } = await open(config);
  const run = await runErasure({ ...erasureOptions(config, store, secret, logger), only: o.id });
  process.stdout.write(`${JSON.stringify(run)}\n`);
  return 0;
}

/** The nightly erasure, before the jobs: they then compute from what remains. */
export function erasureTask(config: Config, store: ObjectStore, logger: Logger): NightlyTask {
  return {
    name: 'erasure',
    async run() {
      const secret = await loadPrivacySecret(config.privacySecret, store);
      const r = await runErasure(erasureOptions(config, store, secret, logger));
      return { regulations: r.regulations, indexed: r.indexed, ...r.report };
    },
  };
}
