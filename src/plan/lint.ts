/**
 * `tracklake plan lint`: the conventions (seed 002) checked over history. It reads the tracking files'
 * `event` column and the observed schemas of a range of days and reports, per event name with counts:
 * names that break the event-name rule, names that differ only by case or spacing, names that should be
 * flattened (`<x> by <y>`, and `<x> <qualifier>` families sharing an object and action), forbidden
 * properties seen, and events not in the tenant's plan.
 *
 * Observed schemas keep names as sent; tracking files keep them trimmed and lower-cased, and mapped to the
 * canonical names (view, share, …). So the schemas' names are linted, and a tracking-file name is added
 * only where no observed name stands for it (days before schemas were kept) and it is not a canonical one.
 */
import type { JobResources } from '../jobs/context.js';
import { TRACK_HEADER, TRACK_TYPES } from '../jobs/tracks.js';
import type { ObjectStore } from '../storage/store.js';
import { buildEventMap, normalizeEventName } from '../tracking/events.js';
import { planSql, queryDays, tenantSlot } from './history.js';
import { IDENTIFY, mergeSchemas, own, readSchemas, type EventShape } from './observe.js';
import { parsePlan, type CompiledPlan } from './plan.js';

export const FINDING_KINDS = ['naming', 'variants', 'flatten', 'family', 'forbidden', 'unplanned'] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export interface Finding {
  tenant: string;
  kind: FindingKind;
  /** The event name the finding is about (for a family or variants: the shared name). */
  event: string;
  count: number;
  detail: string;
  /** The names involved, with counts: variants' spellings, a family's members. */
  names?: Array<{ name: string; count: number }>;
}

/** For tenants without a plan: the default conventions with seed 002's one forbidden property. */
export const SEED_CONVENTIONS = parsePlan('version: 1\nconventions:\n  forbiddenProperties: { channel_id: episode_id }\n', '(seed 002 conventions)');

export interface LintOptions {
  store: ObjectStore;
  resources: JobResources;
  plans: ReadonlyMap<string, CompiledPlan>;
  events: Readonly<Record<string, string>>;
  days: readonly string[];
  tenant?: string;
}

export async function lintHistory(o: LintOptions): Promise<{ findings: Finding[]; names: number; skipped: string[] }> {
  const schemas = await readSchemas(o.store, o.days, o.tenant);
  const shapes = mergeSchemas(schemas.files);
  const tracked = await queryDays<{ tenantid: string; event: string; n: number }>(o.store, o.resources, { prefix: 'tracks', header: TRACK_HEADER, types: TRACK_TYPES }, o.days, (tracks) => planSql('event_names', { tracks, tenant: tenantSlot(o.tenant) }));
  const canonical = new Set([...buildEventMap(o.events).values(), 'load']);
  const tenants = new Set([...shapes.keys(), ...tracked.rows.map((r) => r.tenantid)]);
  const findings: Finding[] = [];
  let names = 0;
  for (const tenant of [...tenants].sort()) {
    const observed = shapes.get(tenant) ?? new Map<string, EventShape>();
    const counts = new Map<string, number>();
    for (const [name, shape] of observed) if (name !== IDENTIFY) counts.set(name, shape.count);
    const covered = new Set([...counts.keys()].map(normalizeEventName));
    for (const r of tracked.rows) {
      if (r.tenantid === tenant && !canonical.has(r.event) && !covered.has(r.event)) counts.set(r.event, r.n);
    }
    names += counts.size;
    findings.push(...lintNames(tenant, counts, observed, o.plans.get(tenant) ?? SEED_CONVENTIONS, o.plans.has(tenant)));
  }
  return { findings, names, skipped: [...tracked.skipped, ...schemas.unreadable.map((k) => `${k}: not a schema file`)] };
}

/** The findings for one tenant's event names (with counts) and observed shapes. */
export function lintNames(tenant: string, counts: ReadonlyMap<string, number>, observed: ReadonlyMap<string, EventShape>, plan: CompiledPlan, planned: boolean): Finding[] {
  const c = plan.plan.conventions;
  const rule = new RegExp(c.eventName);
  const out: Finding[] = [];
  const byCount = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const list = (xs: ReadonlyArray<[string, number]>) => xs.map(([name, count]) => ({ name, count }));

  for (const [name, n] of byCount) {
    if (!rule.test(name)) out.push({ tenant, kind: 'naming', event: name, count: n, detail: 'not an Object-Action name in lower case with a past-tense action' });
  }
  // Spellings of one name: case, spaces, underscores and hyphens aside.
  const spellings = new Map<string, Array<[string, number]>>();
  for (const [name, n] of byCount) {
    const k = name.toLowerCase().replace(/[\s_-]+/g, ' ').trim();
    spellings.set(k, [...(spellings.get(k) ?? []), [name, n]]);
  }
  for (const [k, xs] of spellings) {
    if (xs.length > 1) out.push({ tenant, kind: 'variants', event: k, count: xs.reduce((a, [, n]) => a + n, 0), detail: `${xs.length} spellings of one event`, names: list(xs) });
  }
  for (const [name, n] of byCount) {
    for (const sep of c.flatten) {
      const at = name.indexOf(sep);
      if (at > 0) out.push({ tenant, kind: 'flatten', event: name, count: n, detail: `flatten into "${name.slice(0, at)}" with a "type" property` });
    }
  }
  // Families: names that extend a valid Object-Action name (`call ended early`, `call ended late`).
  const families = new Map<string, Array<[string, number]>>();
  for (const [name, n] of byCount) {
    const words = name.split(' ');
    for (let len = words.length - 1; len >= 2; len--) {
      const base = words.slice(0, len).join(' ');
      if (!rule.test(base)) continue;
      families.set(base, [...(families.get(base) ?? []), [name, n]]);
      break;
    }
  }
  for (const [base, members] of [...families].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (members.length < 2 && !counts.has(base)) continue;
    const all: Array<[string, number]> = counts.has(base) ? [[base, counts.get(base)!], ...members] : members;
    out.push({ tenant, kind: 'family', event: base, count: all.reduce((a, [, n]) => a + n, 0), detail: `${members.length} variant${members.length > 1 ? 's' : ''} of "${base}": one event with a "type" property`, names: list(all) });
  }
  for (const [name, shape] of [...observed].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    for (const [bad, good] of Object.entries(c.forbiddenProperties)) {
      const seen = Object.values(own(shape.properties, bad) ?? {}).reduce((a, k) => a + (k ?? 0), 0);
      if (seen > 0) out.push({ tenant, kind: 'forbidden', event: name, count: seen, detail: `carries "${bad}"; use "${good}"` });
    }
  }
  if (planned) {
    const inPlan = new Set(plan.plan.events.map((e) => e.name));
    const inPlanLower = new Set([...inPlan].map(normalizeEventName));
    for (const [name, n] of byCount) {
      // A tracking-file name is lower case: it is planned when a planned name lower-cases to it.
      const planned = inPlan.has(name) || (!observed.has(name) && inPlanLower.has(name));
      if (!planned) out.push({ tenant, kind: 'unplanned', event: name, count: n, detail: 'not in the tracking plan' });
    }
  }
  return out.sort((a, b) => FINDING_KINDS.indexOf(a.kind) - FINDING_KINDS.indexOf(b.kind));
}

export function lintText(findings: readonly Finding[], names: number): string {
  if (findings.length === 0) return `${names} event names, no findings\n`;
  let out = '';
  let tenant: string | undefined;
  for (const f of findings) {
    if (f.tenant !== tenant) out += `${tenant === undefined ? '' : '\n'}tenant ${(tenant = f.tenant)}\n`;
    out += `  ${f.kind.padEnd(10)} ${String(f.count).padStart(8)}  ${JSON.stringify(f.event)}: ${f.detail}\n`;
    for (const x of f.names ?? []) out += `  ${''.padEnd(10)} ${String(x.count).padStart(8)}    ${JSON.stringify(x.name)}\n`;
  }
  return `${out}\n${findings.length} findings over ${names} event names\n`;
}
