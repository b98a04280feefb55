/** `tracklake token create`: a read-side token for a tenant, or for one merchant of it. */
import type { Config } from '../config/config.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { configuredTenant } from './common.js';
import { openState } from './state.js';
import { ACCESS, createToken, loadSecret, parseDuration, type Access } from '../query/tokens.js';

export async function tokenCreate(config: Config, opts: { tenant: string; merchant?: string; expires?: string; scope?: string }, clock: Clock = systemClock): Promise<string> {
  configuredTenant(config, opts.tenant);
  if (opts.merchant !== undefined && (opts.merchant === '' || opts.merchant.length > 256)) throw new ConfigError('merchant', 'a merchant id is 1-256 characters');
  const access = opts.scope ?? 'read';
  if (!(ACCESS as readonly string[]).includes(access)) throw new ConfigError('scope', `"${access}" is not a scope: read (the query API and dashboard) or privacy (the regulations API)`);
  if (access === 'privacy' && opts.merchant !== undefined) throw new ConfigError('merchant', 'a privacy token is for a whole tenant; give no --merchant');
  const seconds = parseDuration(opts.expires ?? '30d');
  // The token goes to stdout; what was carried over from an older layout goes to stderr.
  const state = await openState(config, (msg, details) => process.stderr.write(`${msg}: ${JSON.stringify(details)}\n`));
  const secret = await loadSecret(config.apiSecret, state.secret);
  return createToken({ tenant: opts.tenant, merchant: opts.merchant, access: access as Access }, seconds, secret, clock);
}
