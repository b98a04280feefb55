/**
 * The read side's tokens: JWTs (HS256, signed with jose) that carry the tenant a caller may read, optionally
 * one merchant within it, and an expiry. The scope a token grants is enforced where data is read, not where
 * it is shown: the query layer adds the tenant (and merchant) to every query whatever the request says.
 *
 * The secret comes from `apiSecret` / TRACKLAKE_API_SECRET; without one, a random secret is made once and
 * kept in the state folder (`<stateDir>/api-secret`, mode 0600, cli/state.ts), so tokens survive restarts.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SignJWT, errors, jwtVerify } from 'jose';
import type { Clock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import { makeDir } from '../storage/local.js';

/** What a token lets its bearer read. */
export interface Scope {
  tenant: string;
  /** Only this merchant's rows, in every endpoint and dimension. */
  merchant?: string;
  /** Expiry, epoch seconds. */
  exp: number;
  /**
   * What the token is for: `read` (the query API and dashboard) or `privacy` (the regulations API only: a
   * privacy officer's system needs no read access to the data, and a read token may not erase it).
   */
  access: Access;
}

export const ACCESS = ['read', 'privacy'] as const;
export type Access = (typeof ACCESS)[number];

/** Why a token was refused; every one of them is a 401 for the caller. */
export type TokenFailure = { ok: false; code: 'missing_token' | 'invalid_token' | 'expired_token'; message: string };
export type TokenResult = { ok: true; scope: Scope } | TokenFailure;

const ALG = 'HS256';
const ISSUER = 'tracklake';
/** Shortest secret accepted: HS256 wants at least 256 bits. */
export const MIN_SECRET_BYTES = 32;
const ID = /^[A-Za-z0-9._-]{1,256}$/;

export async function createToken(scope: { tenant: string; merchant?: string; access?: Access }, expiresInSeconds: number, secret: Uint8Array, clock: Clock): Promise<string> {
  const now = Math.floor(clock.now() / 1000);
  const claims: Record<string, string> = { tenant: scope.tenant };
  if (scope.merchant !== undefined) claims.merchant = scope.merchant;
  if (scope.access === 'privacy') claims.scope = 'privacy';
  return new SignJWT(claims).setProtectedHeader({ alg: ALG, typ: 'JWT' }).setIssuer(ISSUER).setIssuedAt(now).setExpirationTime(now + expiresInSeconds).sign(secret);
}

/** The scope of an `Authorization: Bearer <token>` header, or why it grants none. */
export async function verifyBearer(header: string | undefined, secret: Uint8Array, clock: Clock): Promise<TokenResult> {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) return { ok: false, code: 'missing_token', message: 'Send "Authorization: Bearer <token>" (tracklake token create).' };
  try {
    const { payload } = await jwtVerify(m[1]!, secret, { algorithms: [ALG], issuer: ISSUER, currentDate: new Date(clock.now()), requiredClaims: ['exp', 'tenant'] });
    const { tenant, merchant, exp, scope } = payload as { tenant?: unknown; merchant?: unknown; exp?: number; scope?: unknown };
    if (typeof tenant !== 'string' || !ID.test(tenant)) return { ok: false, code: 'invalid_token', message: 'The token names no valid tenant.' };
    if (merchant !== undefined && (typeof merchant !== 'string' || merchant === '' || merchant.length > 256)) {
      return { ok: false, code: 'invalid_token', message: 'The token names no valid merchant.' };
    }
    if (scope !== undefined && scope !== 'privacy') return { ok: false, code: 'invalid_token', message: 'The token names no valid scope.' };
    if (scope === 'privacy' && merchant !== undefined) return { ok: false, code: 'invalid_token', message: 'A privacy token is for a whole tenant.' };
    return { ok: true, scope: { tenant, merchant: merchant as string | undefined, exp: exp!, access: scope === 'privacy' ? 'privacy' : 'read' } };
  } catch (e) {
    if (e instanceof errors.JWTExpired) return { ok: false, code: 'expired_token', message: 'The token has expired; create a new one.' };
    // Signed right but a claim is wrong: say which, so a token made by a team's own backend can be fixed.
    if (e instanceof errors.JWTClaimValidationFailed) {
      const want = e.claim === 'iss' ? ` (it must be "${ISSUER}")` : '';
      return { ok: false, code: 'invalid_token', message: `The token's "${e.claim}" claim is ${e.reason === 'missing' ? 'missing' : 'not accepted'}${want}; README, "Tokens".` };
    }
    if (e instanceof errors.JOSEError) return { ok: false, code: 'invalid_token', message: 'The token is malformed or its signature does not match.' };
    throw e;
  }
}

/** "30d", "12h", "90m", "3600s" (or a bare number of seconds) → seconds; at most 10 years. */
export function parseDuration(text: string, setting = 'expires'): number {
  const m = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m?.[2] ?? ''];
  const seconds = m ? Number(m[1]) * unit! : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 1 || seconds > 3650 * 86_400) {
    throw new ConfigError(setting, `"${text}" is not a duration such as 30d, 12h, 90m or 3600s (at most 3650d)`);
  }
  return seconds;
}

/**
 * The signing secret: the configured one (at least 32 bytes), else the one kept in `file` (in the state
 * folder), made on first use.
 */
export async function loadSecret(configured: string | undefined, file: string): Promise<Uint8Array> {
  if (configured !== undefined) {
    const bytes = new TextEncoder().encode(configured);
    if (bytes.length < MIN_SECRET_BYTES) throw new ConfigError('apiSecret', `must be at least ${MIN_SECRET_BYTES} bytes`);
    return bytes;
  }
  const kept = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new ConfigError('apiSecret', `cannot read ${file}: ${e.message}`);
  });
  if (kept !== undefined) {
    const secret = kept.trim();
    if (secret.length < 2 * MIN_SECRET_BYTES) throw new ConfigError('apiSecret', `${file} holds no secret of ${MIN_SECRET_BYTES} bytes; remove it to make a new one`);
    return new TextEncoder().encode(secret);
  }
  const secret = randomBytes(MIN_SECRET_BYTES).toString('hex');
  await makeDir(path.dirname(file));
  // wx: two processes starting at once must not each write a different secret; the second reads the first's.
  await fs.writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw new ConfigError('apiSecret', `cannot write ${file}: ${e.message}`);
  });
  return new TextEncoder().encode((await fs.readFile(file, 'utf8')).trim());
}
