/**
 * What a tracking plan leaves in storage, next to the tracking files: the violation files (CSV, one row per
 * violation) and the quarantine files (JSON lines, one blocked message each, whole). Both are written by the
 * collector's log shipper, so they are exactly once like the tracking files; this module is their format.
 */
import { VIOLATION_TYPES } from '../lake/layout.js';
import type { Envelope } from '../segment/message.js';
import { csvLine } from '../tracking/csv.js';
import type { Action, Violation } from './plan.js';

/** The violation file's columns, in order (the contract). */
export const VIOLATION_COLUMNS = Object.keys(VIOLATION_TYPES) as Array<keyof typeof VIOLATION_TYPES>;

/**
 * One violation as a CSV line. `time` is the event's time in epoch ms, as in the tracking files, and the
 * file's day is the event's day, so a day's violations sit beside that day's tracking rows. `event` is the
 * event name as sent for a track call and the call's type otherwise. `action` is what happened to the
 * message (the strongest action among its violations), so every row of a blocked message says `block`.
 */
export function violationLine(time: number, tenant: string, messageId: string, event: string, v: Violation, action: Action): string {
  return csvLine([time, tenant, messageId, event, v.type, v.field, v.message, action]);
}

/** A quarantined message: the message as received, and what is needed to map it as the collector would. */
export interface QuarantineEntry {
  tenant: string;
  /** When the collector received it (epoch ms): replay maps it with this receipt time. */
  receivedAt: number;
  ip: string | null;
  /** The messageId the collector gave it (the message's own, or the one made for a message without one). */
  messageId: string;
  /** A batch's own context and sentAt (epoch ms), which the message inherits. */
  context?: Record<string, unknown>;
  sentAt?: number;
  violations: Violation[];
  message: Record<string, unknown>;
}

export function quarantineLine(e: QuarantineEntry): string {
  return JSON.stringify(e);
}

/** Parses one quarantine line; throws with the reason on a line that is not one. */
export function parseQuarantineLine(line: string): QuarantineEntry {
  const e = JSON.parse(line) as Partial<QuarantineEntry>;
  if (!e || typeof e !== 'object' || typeof e.tenant !== 'string' || typeof e.receivedAt !== 'number' || typeof e.messageId !== 'string' || !e.message || typeof e.message !== 'object') {
    throw new Error('not a quarantine entry (tenant, receivedAt, messageId and message are required)');
  }
  return e as QuarantineEntry;
}

/** The envelope a quarantined message had, for validating it again. */
export const entryEnvelope = (e: QuarantineEntry): Envelope => ({ context: e.context, sentAtMs: e.sentAt });
