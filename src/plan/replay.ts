/**
 * `tracklake plan replay`: quarantined messages that pass the current plan go into the tracking files, once.
 *
 * Each quarantine file keeps a ledger beside it (`<node>-<seq>.replayed.json`): per replay, the lines it let
 * in and the objects it wrote. A replay writes its ledger entry (marked unfinished) first, then its objects
 * (`tracks/<day>/<node>-<seq>-replay-<k>.csv`, and identities alike), then marks the entry finished. A line
 * in a finished entry is never replayed again; an unfinished entry (a crash in between) has its objects
 * deleted and is done again. So a re-run writes nothing new, and a message is in the tracking files once.
 */
import { keys as lakeKeys } from '../lake/layout.js';
import { dayOf } from '../lib/dates.js';
import { validateMessage } from '../segment/message.js';
import type { ObjectStore } from '../storage/store.js';
import { IDENTITY_COLUMNS, TRACK_COLUMNS } from '../tracking/columns.js';
import { csvRecord, trackCsv } from '../tracking/csv.js';
import { UaClassifier } from '../tracking/enrich.js';
import { buildEventMap } from '../tracking/events.js';
import { mapMessage } from '../tracking/map.js';
import { judge } from './apply.js';
import { entryEnvelope, parseQuarantineLine } from './files.js';
import type { CompiledPlan } from './plan.js';

export interface ReplayOptions {
  store: ObjectStore;
  /** The current plan of each tenant; a tenant without one is unchecked, so its messages pass. */
  plans: ReadonlyMap<string, CompiledPlan>;
  /** The configuration's event-name mappings, as the collector maps. */
  events: Readonly<Record<string, string>>;
  days: readonly string[];
  tenant?: string;
  /**
   * Whether a quarantined line is about a suppressed or erased subject (privacy regulations): such a line
   * is never replayed, even while the erasure that will blank it has not run yet.
   */
  erased?: (line: string, receivedAt: number) => boolean;
}

export interface ReplayReport {
  files: number;
  /** Quarantined messages looked at (those not replayed before). */
  checked: number;
  replayed: number;
  stillBlocked: number;
  /** Lines left alone because their subject is suppressed or erased. */
  erased: number;
  /** Lines that cannot be replayed at all (not a quarantine entry, or no longer a valid message), with why. */
  unusable: Array<{ key: string; line: number; reason: string }>;
  written: string[];
}

interface Ledger {
  version: 1;
  replays: Array<{ lines: number[]; keys: string[]; done: boolean }>;
}

export async function replayQuarantine(o: ReplayOptions): Promise<ReplayReport> {
  const report: ReplayReport = { files: 0, checked: 0, replayed: 0, stillBlocked: 0, erased: 0, unusable: [], written: [] };
  const eventMap = buildEventMap(o.events);
  const uaClassifier = new UaClassifier();
  for (const day of o.days) {
    for (const file of await o.store.list(lakeKeys.quarantineDay(day))) {
      if (!file.key.endsWith('.jsonl')) continue;
      report.files++;
      const stem = file.key.slice(0, -'.jsonl'.length);
      const ledgerKey = `${stem}.replayed.json`;
      const stored = await o.store.get(ledgerKey);
      const ledger: Ledger = stored ? (JSON.parse(stored.toString('utf8')) as Ledger) : { version: 1, replays: [] };
      const unfinished = ledger.replays.at(-1);
      if (unfinished && !unfinished.done) {
        for (const key of unfinished.keys) await o.store.delete(key);
        ledger.replays.pop();
      }
      const done = new Set(ledger.replays.flatMap((r) => r.lines));
      const lines = (await o.store.get(file.key))!.toString('utf8').split('\n');
      const passed: number[] = [];
      const groups = new Map<string, string[]>();
      const name = stem.slice(stem.lastIndexOf('/') + 1);
      const k = ledger.replays.length;
      for (let i = 0; i < lines.length; i++) {
        if (lines[i] === '' || done.has(i)) continue;
        const unusable = (reason: string) => report.unusable.push({ key: file.key, line: i + 1, reason });
        let entry;
        try {
          entry = parseQuarantineLine(lines[i]!);
        } catch (e) {
          unusable((e as Error).message);
          continue;
        }
        if (o.tenant !== undefined && entry.tenant !== o.tenant) continue;
        report.checked++;
        if (o.erased?.(lines[i]!, entry.receivedAt)) {
          report.erased++;
          continue;
        }
        const validated = validateMessage(entry.message, entryEnvelope(entry));
        if (!validated.ok) {
          unusable(validated.message);
          continue;
        }
        const { message, verdict } = judge(o.plans.get(entry.tenant), { ...validated.value, messageId: entry.messageId }, entry.message);
        if (verdict?.action === 'block') {
          report.stillBlocked++;
          continue;
        }
        const rows = mapMessage(message, { tenant: entry.tenant, receivedAt: entry.receivedAt, clientIp: entry.ip, eventMap, uaClassifier });
        if (!rows.ok) {
          unusable(rows.message);
          continue;
        }
        const add = (prefix: 'tracks' | 'identities', time: number, line: string) => {
          const key = lakeKeys.shipped(prefix, dayOf(time), `${name}-replay-${k}`, 'csv');
          let g = groups.get(key);
          if (!g) groups.set(key, (g = []));
          g.push(line);
        };
        for (const r of rows.value.tracks) add('tracks', r.time, trackCsv(r));
        for (const r of rows.value.identities) add('identities', r.time, csvRecord(r, IDENTITY_COLUMNS));
        passed.push(i);
      }
      if (passed.length === 0) continue;
      const keys = [...groups.keys()].sort();
      ledger.replays.push({ lines: passed, keys, done: false });
      await o.store.put(ledgerKey, JSON.stringify(ledger));
      for (const key of keys) {
        const header = key.startsWith('tracks/') ? TRACK_COLUMNS : IDENTITY_COLUMNS;
        await o.store.put(key, `${header.join(',')}\n${groups.get(key)!.join('\n')}\n`);
      }
      ledger.replays[k]!.done = true;
      await o.store.put(ledgerKey, JSON.stringify(ledger));
      report.replayed += passed.length;
      report.written.push(...keys);
    }
  }
  return report;
}
