/** `tracklake token create`: a read-side token for a tenant, or for one merchant of it. */
import type { Config } from '../config/config.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { createToken, loadSecret, parseDuration } from '../query/tokens.js';

export async function tokenCreate(config: Config, opts: { tenant: string; merchant?: string; expires?: string }, clock: Clock = systemClock): Promise<string> {
  const tenants = new Set(Object.values(config.sources));
  if (!tenants.has(opts.tenant)) throw new ConfigError('tenant', `"${opts.tenant}" is no tenant of this configuration (${[...tenants].join(', ')})`);
  if (opts.merchant !== undefined && (opts.merchant === '' || opts.merchant.length > 256)) throw new ConfigError('merchant', 'a merchant id is 1-256 characters');
  const seconds = parseDuration(opts.expires ?? '30d');
  const secret = await loadSecret(config.apiSecret, config.walDir);
  return createToken({ tenant: opts.tenant, merchant: opts.merchant }, seconds, secret, clock);
}
