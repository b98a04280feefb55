/**
 * The last gate before storage: messages acknowledged before a suppression or a deletion reached this node
 * are still in its log, and are left out when their segment ships. Only records received before the lists
 * last changed at the door are looked at (every later one was already judged by the door with these lists),
 * so in steady state shipping pays nothing for it.
 *
 * A record is one message: its tracking rows, identity links, violations and quarantine line go or stay
 * together. Its subject is read off its rows (lake/layout.ts names the columns).
 */
import type { SuppressionState } from './regulations.js';
import { rowSubject, subjectHash, type PersonKind, type SubjectType } from './subjects.js';

/** A row of a log record: its kind byte's letter and its line's bytes. */
export interface RowView {
  kind: 't' | 'i' | 'v' | 'q';
  line: Buffer;
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

  /** The tenant whose subject's record this is, when it must be left out; undefined to keep it. */
  drops(at: number, rows: readonly RowView[]): string | undefined {
    for (const row of rows) {
      const ids = idsOf(row);
      if (ids === undefined) continue;
      const state = this.states.get(ids.tenant);
      if (state === undefined) return undefined;
      for (const [type, id] of ids.subjects) {
        if (id === '') continue;
        const h = subjectHash(this.secret, ids.tenant, type, id);
        if (state.suppressed.has(h)) return ids.tenant;
        const before = state.erased.get(h);
        if (before !== undefined && at < before) return ids.tenant;
      }
      return undefined; // one row with ids tells the record's subject
    }
    return undefined;
  }
}

/** The ids a row names, by subject type: tracking rows, identity links and quarantine lines name people. */
function idsOf(row: RowView): { tenant: string; subjects: Array<[SubjectType, string]> } | undefined {
  const kind = ROW_KINDS[row.kind];
  const r = kind && rowSubject(kind, row.line);
  return r && { tenant: r.tenant, subjects: [['USER_ID', r.user], ...r.devices.map((d): [SubjectType, string] => ['ANONYMOUS_ID', d])] };
}

/** The log's row kinds (ingest/records.ts) that name a person, as the bucket's kinds of file. */
const ROW_KINDS: Record<RowView['kind'], PersonKind | undefined> = { t: 'tracks', i: 'identities', v: undefined, q: 'quarantine' };
