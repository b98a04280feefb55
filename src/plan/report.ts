/** `tracklake plan report`: violations per tenant, event and type over a range of days, with a sample each. */
import type { JobResources } from '../jobs/context.js';
import type { ObjectStore } from '../storage/store.js';
import { headerOf, LAKE } from '../lake/layout.js';
import { planSql, queryDays, tenantSlot } from './history.js';

export const VIOLATION_KIND = { prefix: 'violations', header: headerOf(LAKE.violations), types: LAKE.violations.columns };

export interface ReportRow {
  tenant: string;
  event: string;
  type: string;
  count: number;
  /** Counts by the action taken on the messages: {block: 3, allow: 1}. */
  actions: Record<string, number>;
  /** The earliest violation of the group: its message id, field and text. */
  sample: { messageId: string; field: string; message: string };
}

export async function violationReport(store: ObjectStore, resources: JobResources, days: readonly string[], tenant?: string): Promise<{ rows: ReportRow[]; skipped: string[] }> {
  type Raw = { tenantid: string; event: string; type: string; n: number; blocked: number; omitted: number; sample_id: string; sample_field: string; sample_message: string };
  const { rows, skipped } = await queryDays<Raw>(store, resources, VIOLATION_KIND, days, (violations) => planSql('violation_report', { violations, tenant: tenantSlot(tenant) }));
  return {
    rows: rows.map((r) => {
      const actions: Record<string, number> = {};
      if (r.n - r.blocked - r.omitted > 0) actions.allow = r.n - r.blocked - r.omitted;
      if (r.omitted > 0) actions.omit = r.omitted;
      if (r.blocked > 0) actions.block = r.blocked;
      return { tenant: r.tenantid, event: r.event, type: r.type, count: r.n, actions, sample: { messageId: r.sample_id, field: r.sample_field, message: r.sample_message } };
    }),
    skipped,
  };
}

export function reportText(rows: readonly ReportRow[]): string {
  if (rows.length === 0) return 'no violations\n';
  let out = '';
  let tenant: string | undefined;
  for (const r of rows) {
    if (r.tenant !== tenant) out += `${tenant === undefined ? '' : '\n'}tenant ${(tenant = r.tenant)}\n`;
    const actions = Object.entries(r.actions).map(([a, n]) => `${a} ${n}`).join(', ');
    out += `  ${String(r.count).padStart(8)}  ${r.type.padEnd(22)} ${JSON.stringify(r.event)} (${actions})\n`;
    out += `            e.g. ${r.sample.messageId}: ${r.sample.field}: ${r.sample.message}\n`;
  }
  return out;
}
