/** `tracklake plan check FILE`: validates a tracking plan without starting anything. */
import { loadPlan, PlanError } from '../plan/plan.js';
import { ConfigError } from '../lib/errors.js';

export function planCheck(file: string): number {
  try {
    const { plan } = loadPlan(file);
    const enforced = Object.entries(plan.enforcement).map(([type, action]) => `${type}: ${action}`);
    process.stdout.write(`${file}: a valid plan of ${plan.events.length} events${enforced.length ? `; ${enforced.join(', ')}` : '; every violation allowed and recorded'}\n`);
    return 0;
  } catch (e) {
    if (e instanceof PlanError) throw new ConfigError('plan', e.message);
    throw e;
  }
}
