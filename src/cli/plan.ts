/** `tracklake plan …`: check, replay, infer, lint, report and typegen (README, "Tracking plans"). */
import { promises as fs } from 'node:fs';
import type { Config } from '../config/config.js';
import { jobResources, s3Settings } from '../config/config.js';
import { dayOfKey } from '../lib/dates.js';
import { ConfigError } from '../lib/errors.js';
import { inferPlan } from '../plan/infer.js';
import { lintHistory, lintText } from '../plan/lint.js';
import { IDENTIFY, mergeSchemas, readSchemas } from '../plan/observe.js';
import { loadPlan, PlanError, tenantPlans, type CompiledPlan } from '../plan/plan.js';
import { replayQuarantine } from '../plan/replay.js';
import { regulationFilter } from '../privacy/watch.js';
import { reportText, violationReport } from '../plan/report.js';
import { typegenTs, type TypegenClient } from '../plan/typegen.js';
import { openStore } from '../storage/open.js';
import { selectDays } from './aggregate.js';

/** A plan file, or a PlanError as a ConfigError (exit 2). */
function planFile(file: string): CompiledPlan {
  try {
    return loadPlan(file);
  } catch (e) {
    if (e instanceof PlanError) throw new ConfigError('plan', e.message);
    throw e;
  }
}

export function planCheck(file: string): number {
  const { plan } = planFile(file);
  const enforced = Object.entries(plan.enforcement).map(([type, action]) => `${type}: ${action}`);
  process.stdout.write(`${file}: a valid plan of ${plan.events.length} events${enforced.length ? `; ${enforced.join(', ')}` : '; every violation allowed and recorded'}\n`);
  return 0;
}

const compiledPlans = (config: Config) => new Map([...tenantPlans(config.plans)].map(([t, p]) => [t, p.compiled]));

export interface RangeOptions {
  from: string;
  to: string;
  tenant?: string;
  json?: boolean;
}

const rangeDays = (o: { from?: string; to?: string }) => selectDays({ from: o.from, to: o.to }, Date.now()).days!;

export async function planReplay(config: Config, o: RangeOptions): Promise<number> {
  const store = await openStore(config.storage, s3Settings(config));
  // A suppressed or erased subject's blocked messages stay out, as the collector's shipper keeps them out.
  const filter = await regulationFilter(store, config.privacySecret);
  const erased = (line: string, receivedAt: number) => filter.drops(receivedAt, [{ kind: 'q', line: Buffer.from(line) }]) !== undefined;
  const r = await replayQuarantine({ store, plans: compiledPlans(config), events: config.events, days: rangeDays(o), tenant: o.tenant, erased });
  for (const u of r.unusable) process.stderr.write(`cannot replay ${u.key}:${u.line}: ${u.reason}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else process.stdout.write(`${r.checked} quarantined messages checked in ${r.files} file${r.files === 1 ? '' : 's'}: ${r.replayed} replayed into the tracking files, ${r.stillBlocked} still blocked${r.erased ? `, ${r.erased} of suppressed or erased subjects left alone` : ''}${r.unusable.length ? `, ${r.unusable.length} unusable` : ''}\n`);
  return 0;
}

export async function planInfer(config: Config, o: { tenant: string; from?: string; to?: string; out?: string }): Promise<number> {
  const store = await openStore(config.storage, s3Settings(config));
  let days: string[];
  if (o.from !== undefined || o.to !== undefined) days = rangeDays(o);
  else {
    // Every day that has schemas, from one listing.
    const all = new Set((await store.list('schemas/')).map((x) => dayOfKey(x.key)).filter((d): d is string => d !== undefined));
    days = [...all].sort();
  }
  const schemas = await readSchemas(store, days, o.tenant);
  for (const k of schemas.unreadable) process.stderr.write(`skipped file ${k}: not a schema file\n`);
  const events = mergeSchemas(schemas.files).get(o.tenant);
  if (!events || days.length === 0) {
    process.stderr.write(`tracklake: no observed schemas of tenant "${o.tenant}" in ${store.location}${days.length ? ` for ${days[0]}..${days.at(-1)}` : ''}; the collector writes them as it receives events\n`);
    return 1;
  }
  const yaml = inferPlan({ tenant: o.tenant, from: days[0]!, to: days.at(-1)!, events });
  if (!o.out) {
    process.stdout.write(yaml);
    return 0;
  }
  await fs.writeFile(o.out, yaml);
  const planned = [...events.keys()].filter((n) => n !== IDENTIFY).length;
  process.stderr.write(`wrote a draft plan of ${planned} events to ${o.out}; check it with \`tracklake plan check ${o.out}\`\n`);
  return 0;
}

export async function planLint(config: Config, o: RangeOptions): Promise<number> {
  const store = await openStore(config.storage, s3Settings(config));
  const r = await lintHistory({ store, resources: jobResources(config), plans: compiledPlans(config), events: config.events, days: rangeDays(o), tenant: o.tenant });
  for (const s of r.skipped) process.stderr.write(`skipped file ${s}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify({ from: o.from, to: o.to, names: r.names, findings: r.findings })}\n`);
  else process.stdout.write(lintText(r.findings, r.names));
  return r.findings.length > 0 ? 1 : 0;
}

export async function planReport(config: Config, o: RangeOptions): Promise<number> {
  const store = await openStore(config.storage, s3Settings(config));
  const r = await violationReport(store, jobResources(config), rangeDays(o), o.tenant);
  for (const s of r.skipped) process.stderr.write(`skipped file ${s}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify({ from: o.from, to: o.to, violations: r.rows })}\n`);
  else process.stdout.write(reportText(r.rows));
  return 0;
}

export async function planTypegen(config: Config | undefined, o: { file?: string; tenant?: string; lang: string; client: string; out?: string }): Promise<number> {
  if (o.lang !== 'ts') throw new ConfigError('lang', `"${o.lang}" is not a language typegen writes (ts)`);
  if (o.client !== 'browser' && o.client !== 'node') throw new ConfigError('client', `"${o.client}" is not browser or node`);
  let compiled: CompiledPlan;
  if (o.file !== undefined) compiled = planFile(o.file);
  else {
    if (!o.tenant || !config) throw new ConfigError('plan', 'give a plan file, or --tenant with a configured plan');
    const p = tenantPlans(config.plans).get(o.tenant);
    if (!p) throw new ConfigError('tenant', `tenant "${o.tenant}" has no plan in the configuration`);
    compiled = p.compiled;
  }
  const ts = typegenTs(compiled.plan, compiled.file, o.client as TypegenClient);
  if (o.out) await fs.writeFile(o.out, ts);
  else process.stdout.write(ts);
  return 0;
}
