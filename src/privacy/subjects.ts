/**
 * Who a regulation is about, and how tracklake recognises them without keeping a plain copy of their ids.
 *
 * A subject is a `USER_ID` (the tracking rows' `accountid`, a message's `userId`) or an `ANONYMOUS_ID` (the
 * rows' `deviceid`: a message's `context.device.id` or `anonymousId`, and an alias call's `previousId`).
 * Suppression lists and finished regulations keep only a keyed hash of each id: HMAC-SHA256 under the privacy
 * secret (privacy/secret.ts) of tenant, type and id. Whoever reads the bucket cannot list the people who
 * asked to be forgotten, and cannot test a guess without the secret.
 */
import { createHmac } from 'node:crypto';

import { LAKE, SUBJECT_TYPES, type ColumnTypes, type SubjectType } from '../lake/layout.js';

export { SUBJECT_TYPES, type SubjectType };

/** The keyed hash of one subject: 128 bits of HMAC-SHA256, hex. */
export function subjectHash(secret: string, tenant: string, type: SubjectType, id: string): string {
  return createHmac('sha256', secret).update(`${tenant}\0${type}\0${id}`).digest('hex').slice(0, 32);
}

/** The ids a message names, by subject type (plain data read off a validated message). */
export interface MessageIds {
  userId?: string | undefined;
  anonymousId?: string | undefined;
  deviceId?: string | undefined;
  previousId?: string | undefined;
}

/** The kinds of file whose rows name people (lake/layout.ts), and who a row names. */
export type PersonKind = 'tracks' | 'identities' | 'quarantine';
export interface RowSubject {
  tenant: string;
  /** The account id, or ''. */
  user: string;
  /** Device, anonymous and previous ids ('' where absent). */
  devices: string[];
  /** A quarantine line's message id. */
  messageId?: string;
}

/**
 * A reader of some columns of a CSV kind's lines, by name: the positions come from the columns lake/layout.ts
 * gives the kind, and only the fields up to the last one wanted are split.
 */
export function fieldReader(columns: ColumnTypes, names: readonly string[]): (line: Buffer | string) => string[] {
  const all = Object.keys(columns);
  const at = names.map((n) => {
    const i = all.indexOf(n);
    if (i < 0) throw new Error(`no column ${n}`);
    return i;
  });
  const width = Math.max(...at) + 1;
  return (line) => {
    const f = csvFields(line, width);
    return at.map((i) => f[i] ?? '');
  };
}

/** Per CSV kind naming people: its tenant, its account id, then its device ids (lake/layout.ts's subjects). */
const READERS = {
  tracks: fieldReader(LAKE.tracks.columns, ['tenantid', ...LAKE.tracks.subjects.USER_ID, ...LAKE.tracks.subjects.ANONYMOUS_ID]),
  identities: fieldReader(LAKE.identities.columns, ['tenantid', ...LAKE.identities.subjects.USER_ID, ...LAKE.identities.subjects.ANONYMOUS_ID]),
};

/**
 * Who a row of a tracking file, an identity file or a quarantine file names: the one reading of it that the
 * door's filter, the index and the erasure share. Undefined for a line that names nobody.
 */
export function rowSubject(kind: PersonKind, line: Buffer | string): RowSubject | undefined {
  if (kind === 'quarantine') return quarantineSubject(line);
  const [tenant, user, ...devices] = READERS[kind](line);
  return { tenant: tenant!, user: user!, devices };
}

/** A quarantine line's tenant, message id and subject ids (user id; device, anonymous and previous ids). */
function quarantineSubject(line: Buffer | string): Required<RowSubject> | undefined {
  try {
    const e = JSON.parse(typeof line === 'string' ? line : line.toString('utf8')) as { tenant: string; messageId: string; message: Record<string, unknown> };
    return { ...messageSubject(e.tenant, e.message), messageId: e.messageId };
  } catch {
    return undefined; // a line that is not a quarantine entry names nobody
  }
}

/**
 * Who a message as JSON names (a quarantine entry's, a forwarded message's): its user id, then its anonymous id,
 * context.device.id and an alias call's previousId ('' where absent).
 */
export function messageSubject(tenant: string, message: unknown): RowSubject {
  const m = (typeof message === 'object' && message !== null ? message : {}) as Record<string, unknown>;
  const s = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
  const device = (m.context as { device?: { id?: unknown } } | undefined)?.device?.id;
  return { tenant, user: s(m.userId), devices: [s(m.anonymousId), s(device), s(m.previousId)] };
}

/**
 * The door's view of the suppression lists: per tenant, the hashes of its suppressed subjects. A tenant
 * without suppressions costs one map lookup per message; with some, one HMAC per id the message carries.
 */
/** The suppression lists as they travel to the request workers: the hashes' key, and tenant → hashes. */
export interface SuppressionLists {
  secret: string;
  byTenant: Readonly<Record<string, readonly string[]>>;
}

export class SuppressionSet {
  private readonly byTenant = new Map<string, Set<string>>();
  private secret: string | undefined;

  constructor(lists?: SuppressionLists) {
    if (lists) this.set(lists);
  }

  set(lists: SuppressionLists): void {
    this.secret = lists.secret;
    this.byTenant.clear();
    for (const [tenant, hashes] of Object.entries(lists.byTenant)) if (hashes.length > 0) this.byTenant.set(tenant, new Set(hashes));
  }

  get size(): number {
    let n = 0;
    for (const s of this.byTenant.values()) n += s.size;
    return n;
  }

  /** Whether any id of the message is suppressed for the tenant. */
  suppresses(tenant: string, ids: MessageIds): boolean {
    const set = this.byTenant.get(tenant);
    if (set === undefined || this.secret === undefined) return false;
    const has = (type: SubjectType, id: string | undefined) => id !== undefined && id !== '' && set.has(subjectHash(this.secret!, tenant, type, id));
    return has('USER_ID', ids.userId) || has('ANONYMOUS_ID', ids.anonymousId) || (ids.deviceId !== ids.anonymousId && has('ANONYMOUS_ID', ids.deviceId)) || has('ANONYMOUS_ID', ids.previousId);
  }
}

/** The first n fields of one RFC 4180 line (tracklake's own writing: quotes doubled inside quoted fields). */
export function csvFields(line: Buffer | string, n: number): string[] {
  const text = typeof line === 'string' ? line : line.toString('utf8');
  const out: string[] = [];
  let i = 0;
  while (out.length < n && i <= text.length) {
    if (text[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) {
          v += text.slice(i);
          i = text.length;
          break;
        }
        v += text.slice(i, q);
        if (text[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(v);
      i++; // the comma
    } else {
      const c = text.indexOf(',', i);
      const end = c < 0 ? text.length : c;
      out.push(text.slice(i, end));
      i = end + 1;
    }
  }
  return out;
}
