/**
 * The last gate before storage: messages acknowledged before a suppression or a deletion reached this node
 * are still in its log, and are left out when their segment ships and when a destination forwards them
 * (forward/forwarder.ts). Only records received before the lists last changed at the door are looked at
 * (every later one was already judged by the door with these lists), so in steady state shipping and
 * forwarding pay nothing for it.
 *
 * A record is one message: its tracking rows, identity links, violations and quarantine line go or stay
 * together. Its subject is read off its rows (lake/layout.ts names the columns).
 */
import type { SuppressionState } from './regulations.js';
import { messageSubject, rowSubject, subjectHash, type PersonKind, type RowSubject, type SubjectType } from './subjects.js';

/** A row of a log record: its kind byte's letter and its line's bytes. */
export interface RowView {
  kind: 't' | 'i' | 'v' | 'q';
  line: Buffer;
}

/** The filter in force, for the log's readers (the shipper, the destinations): they wait for `ready` first. */
export interface PrivacyGate {
  filter(): ShipFilter | undefined;
  ready(): Promise<void>;
}

export class ShipFilter {
  /**
   * states: per tenant, what its regulations say. activeSince: when the door started applying them;
   * records received from then on are not looked at.
   */
  constructor(private readonly secret: string, private readonly states: ReadonlyMap<string, SuppressionState>, readonly activeSince: number) {}

  /** Whether a record received at `at` must be looked at. */
  looksAt(at: number): boolean {
    return at < this.activeSince && this.states.size > 0;
  }

  /**
   * Which messages this filter must judge: those of these tenants received before `before` (looksAt); a
   * destination's thread hands them back to be judged here (forward/log-delivery.ts). Undefined: none.
   */
  horizon(): { before: number; tenants: string[] } | undefined {
    return this.states.size > 0 ? { before: this.activeSince, tenants: [...this.states.keys()] } : undefined;
  }

  /** The tenant whose subject's record this is, when it must be left out; undefined to keep it. */
  drops(at: number, rows: readonly RowView[]): string | undefined {
    for (const row of rows) {
      const kind = ROW_KINDS[row.kind];
      const r = kind && rowSubject(kind, row.line);
      if (r === undefined) continue;
      return this.dropsSubject(at, r) ? r.tenant : undefined; // one row with ids tells the record's subject
    }
    return undefined;
  }

  /**
   * Whether a message (as JSON text) received at `at` must be left out: a destination's copy is judged by
   * the message itself, since a call that makes no tracking row (a group call, say) is forwarded too.
   */
  dropsMessage(at: number, tenant: string, json: Buffer): boolean {
    if (!this.looksAt(at) || !this.states.has(tenant)) return false;
    let message: unknown;
    try {
      message = JSON.parse(json.toString('utf8'));
    } catch {
      return false; // the collector wrote it from a parsed message: not reached
    }
    return this.dropsSubject(at, messageSubject(tenant, message));
  }

  private dropsSubject(at: number, r: RowSubject): boolean {
    const state = this.states.get(r.tenant);
    if (state === undefined) return false;
    const subjects: Array<[SubjectType, string]> = [['USER_ID', r.user], ...r.devices.map((d): [SubjectType, string] => ['ANONYMOUS_ID', d])];
    for (const [type, id] of subjects) {
      if (id === '') continue;
      const h = subjectHash(this.secret, r.tenant, type, id);
      if (state.suppressed.has(h)) return true;
      const before = state.erased.get(h);
      if (before !== undefined && at < before) return true;
    }
    return false;
  }
}

/** The log's row kinds (ingest/records.ts) that name a person, as the bucket's kinds of file. */
const ROW_KINDS: Record<RowView['kind'], PersonKind | undefined> = { t: 'tracks', i: 'identities', v: undefined, q: 'quarantine' };
