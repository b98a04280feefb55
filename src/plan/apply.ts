/**
 * A plan's verdict on a validated Segment message, and the message as the plan leaves it (without the
 * properties `omit` drops). The collector (ingest/prepare.ts) and `plan replay` both judge through here, so a
 * replayed message is treated exactly as the collector would treat it today.
 */
import type { SegmentMessage } from '../segment/message.js';
import { IDENTIFY } from './observe.js';
import type { CompiledPlan, Verdict } from './plan.js';
import { isObject } from '../lib/json.js';

export interface Judged {
  /** The message to map: the validated one, or a copy without the omitted properties. */
  message: SegmentMessage;
  /** undefined when the tenant has no plan. */
  verdict: Verdict | undefined;
  /** The name observed schemas count it under (track: its event; identify: IDENTIFY), and what they count. */
  observedAs: string | undefined;
  values: Record<string, unknown>;
}

/** raw is the message as received: identify traits are read from it (the validated message drops them). */
export function judge(plan: CompiledPlan | undefined, message: SegmentMessage, raw: Record<string, unknown>): Judged {
  const traits = isObject(raw.traits) ? raw.traits : message.context.traits;
  const values = message.type === 'identify' ? (isObject(traits) ? traits : {}) : message.properties;
  const observedAs = message.type === 'track' ? message.event! : message.type === 'identify' ? IDENTIFY : undefined;
  const verdict = plan?.checkValues(message.type, message.event, values);
  if (verdict?.action === 'omit' && verdict.omit.length > 0 && message.type !== 'identify') {
    const properties = { ...message.properties };
    for (const k of verdict.omit) delete properties[k];
    message = { ...message, properties };
  }
  return { message, verdict, observedAs, values };
}
