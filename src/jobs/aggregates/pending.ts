/** The catch-up rule shared by the 01:00 scheduler and `aggregate --pending`. */
import { addDays, daysBetween } from '../../lib/dates.js';
import type { ObjectStore } from '../../storage/store.js';
import { dayState } from './job.js';
import type { MetricDef } from './metrics.js';

/**
 * Yesterday, plus every day of the lookback window whose tracking files changed since it was aggregated, or
 * that has tracking files and was never aggregated (the collector or the scheduler was down).
 */
export async function pendingDays(store: ObjectStore, today: string, lookbackDays: number, metrics: readonly MetricDef[]): Promise<string[]> {
  const yesterday = addDays(today, -1);
  const out: string[] = [];
  for (const day of daysBetween(addDays(today, -lookbackDays), yesterday)) {
    if (day === yesterday) {
      out.push(day);
      continue;
    }
    const { listed, hasManifest, current } = await dayState(store, day, metrics);
    // A day with files, or with a manifest (even an unreadable one: its outputs may need redoing).
    if (!current && (listed.length > 0 || hasManifest)) out.push(day);
  }
  return out;
}
