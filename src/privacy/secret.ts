/**
 * The privacy secret: the key of the suppression lists' hashes and of hashed addresses. Every node on a
 * bucket must use the same one (a suppression sent to one node is applied by all), so without a configured
 * `privacySecret` it is made once and kept in the bucket at `privacy/secret`.
 *
 * Kept in the bucket, it protects the lists against anyone who sees a copy of them without the bucket (a
 * log, a backup of the privacy folder); configured (TRACKLAKE_PRIVACY_SECRET from a secret manager), it
 * also protects them against readers of the bucket. The README says so.
 */
import { randomBytes } from 'node:crypto';
import { keys } from '../lake/layout.js';
import { ConfigError } from '../lib/errors.js';
import type { ObjectStore } from '../storage/store.js';

const MIN_CHARS = 32;

export async function loadPrivacySecret(configured: string | undefined, store: ObjectStore): Promise<string> {
  if (configured !== undefined) return configured;
  const kept = await store.get(keys.privacySecret);
  if (kept !== undefined) {
    const secret = kept.toString('utf8').trim();
    if (secret.length < MIN_CHARS) throw new ConfigError('privacySecret', `${store.location}/${keys.privacySecret} holds no secret of ${MIN_CHARS} characters`);
    return secret;
  }
  await store.put(keys.privacySecret, `${randomBytes(32).toString('hex')}\n`);
  // Read back: of two nodes making one at the same moment, both go on with the one that was stored last.
  return (await store.get(keys.privacySecret))!.toString('utf8').trim();
}
