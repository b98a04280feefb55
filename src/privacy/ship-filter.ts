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
import { quarantineSubject, subjectHash, type SubjectType } from './subjects.js';

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

function idsOf(row: RowView): { tenant: string; subjects: Array<[SubjectType, string]> } | undefined {
  if (row.kind === 't') {
    const f = csvFields(row.line, 5);
    return { tenant: f[1] ?? '', subjects: [['USER_ID', f[4] ?? ''], ['ANONYMOUS_ID', f[3] ?? '']] };
  }
  if (row.kind === 'i') {
    const f = csvFields(row.line, 5);
    return { tenant: f[1] ?? '', subjects: [['USER_ID', f[3] ?? ''], ['ANONYMOUS_ID', f[2] ?? ''], ['ANONYMOUS_ID', f[4] ?? '']] };
  }
  if (row.kind === 'q') {
    const q = quarantineSubject(row.line);
    return q && { tenant: q.tenant, subjects: [['USER_ID', q.user], ...q.devices.map((d): [SubjectType, string] => ['ANONYMOUS_ID', d])] };
  }
  return undefined;
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
