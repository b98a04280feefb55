/** The catch-up rule shared by the 01:00 scheduler and `aggregate --pending`. */
import { addDays, daysBetween } from '../../lib/dates.js';
import type { ObjectStore } from '../../storage/store.js';
import { dayIsStale, paths } from './job.js';
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
    const hasInput = (await store.list(paths.tracks(day))).length > 0;
    const hasManifest = (await store.get(paths.manifest(day))) !== undefined;
    if ((hasInput || hasManifest) && (await dayIsStale(store, day, metrics))) out.push(day);
  }
  return out;
}
