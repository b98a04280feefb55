/**
 * Dead letters: the messages a destination refused (a 4xx other than 408/429, a row Postgres will not take)
 * or that still failed after maxAttempts, kept in the bucket with the last error, under the day they failed:
 * `deadletter/<name>/<yyyy>/<mm>/<dd>/<id>.jsonl`, a JSON line per message. `tracklake destinations replay`
 * sends them again; what is delivered leaves the file, what fails again stays with its new error.
 */
import type { Logger } from 'pino';
import type { Destination } from '../config/destinations.js';
import { dayOfKey, dayPath, daysBetween } from '../lib/dates.js';
import type { ObjectInfo, ObjectStore } from '../storage/store.js';
import { deliver, type DeliveryHooks, type Undelivered } from './deliver.js';
import type { Outgoing, Sender } from './sender.js';

export const deadLetterPrefix = (name: string) => `deadletter/${name}/`;

export function deadLetterLines(batch: readonly Outgoing[], error: string, attempts: number, at: number): string {
  const head = `{"error":${JSON.stringify(error)},"attempts":${attempts},"at":"${new Date(at).toISOString()}"`;
  return batch.map((m) => `${head},"tenant":${JSON.stringify(m.tenant)},"message":${m.json.toString('utf8')}}`).join('\n') + '\n';
}

export interface DeadLetter extends Outgoing {
  error: string;
  attempts: number;
  at: string;
}

export function parseDeadLetters(body: string): DeadLetter[] {
  return body.split('\n').filter((l) => l.trim() !== '').map((l) => {
    const o = JSON.parse(l) as { error: string; attempts: number; at: string; tenant: string; message: unknown };
    return { error: o.error, attempts: o.attempts, at: o.at, tenant: o.tenant, json: Buffer.from(JSON.stringify(o.message)) };
  });
}

/** A dead letter's identity across a file's versions: its tenant and its message as parseDeadLetters writes it. */
const letterKey = (m: Outgoing) => `${m.tenant}\0${m.json.toString('utf8')}`;

export interface ReplayReport {
  files: number;
  sent: number;
  /** Messages that failed again, left in their files with the new error. */
  failed: number;
  /** Messages of a suppressed or erased subject: not sent, left in their files (an erasure removes them). */
  leftOut: number;
}

/**
 * Sends a destination's dead letters of the days from..to again, file by file, in batches of its batchCount.
 * `leftOut` says which must not go (privacy regulations): they stay in their files as they were.
 */
export async function replayDeadLetters(store: ObjectStore, d: Destination, sender: Sender, days: { from: string; to: string }, logger: Logger, now: () => number, leftOut: (l: DeadLetter) => boolean = () => false): Promise<ReplayReport> {
  const wanted = new Set(daysBetween(days.from, days.to));
  // Listed a month at a time: a destination failing for a year leaves a year of files, and a replay of a
  // day should not list them all; a range of years is a listing a month, not one a day.
  const months = [...new Set([...wanted].map((day) => dayPath(day).slice(0, 7)))];
  const files: ObjectInfo[] = [];
  for (const month of months) files.push(...(await store.list(`${deadLetterPrefix(d.name)}${month}/`)).filter((o) => o.key.endsWith('.jsonl') && wanted.has(dayOfKey(o.key) ?? '')));
  const report: ReplayReport = { files: files.length, sent: 0, failed: 0, leftOut: 0 };
  const hooks: DeliveryHooks = {
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    stopped: () => false,
    delivered: (n) => void (report.sent += n),
    failed: (error, attempt, retryInMs) => retryInMs !== undefined && logger.warn({ destination: d.name, err: error, attempt }, 'replay: will retry'),
  };
  for (const file of files) {
    const all = parseDeadLetters((await store.get(file.key))?.toString('utf8') ?? '');
    const out = all.map(leftOut);
    const held = all.filter((_, i) => out[i]);
    const letters = all.filter((_, i) => !out[i]);
    const undelivered: Undelivered[] = [];
    for (let i = 0; i < letters.length; i += d.batchCount) undelivered.push(...(await deliver(sender, letters.slice(i, i + d.batchCount), d, hooks)));
    report.leftOut += held.length;
    if (undelivered.length === 0 && held.length === 0) {
      await store.delete(file.key);
    } else if (letters.length > 0) {
      // Read again before writing back: an erasure may have removed lines while these were sent (retries can
      // take minutes), and writing back what was read first would put its subject's messages back.
      const still = new Set(parseDeadLetters((await store.get(file.key))?.toString('utf8') ?? '').map(letterKey));
      const kept = held.filter((l) => still.has(letterKey(l))).map((l) => deadLetterLines([l], l.error, l.attempts, Date.parse(l.at))).join('');
      const again = undelivered.map((u) => ({ ...u, messages: u.messages.filter((m) => still.has(letterKey(m))) })).filter((u) => u.messages.length > 0);
      const body = kept + again.map((u) => deadLetterLines(u.messages, u.error, u.attempts, now())).join('');
      if (body === '') await store.delete(file.key);
      else await store.put(file.key, body);
      report.failed += again.reduce((n, u) => n + u.messages.length, 0);
    }
    logger.info({ destination: d.name, file: file.key, messages: letters.length }, 'replay: dead letters sent');
  }
  return report;
}
