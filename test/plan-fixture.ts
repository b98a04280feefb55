/** A tracking plan and helpers the plan tests share. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ObjectStore } from '../src/storage/store.js';
import { T0, track } from './helpers.js';

/** Blocks what cannot be used, drops what is not planned, allows the rest (and records it). */
export const PLAN = `version: 1
events:
  - name: product viewed
    properties:
      type: object
      required: [product_id]
      properties:
        product_id: { type: string }
      additionalProperties: false
  - name: call started
    properties: { type: object, required: [episode_id], properties: { episode_id: { type: string } } }
conventions:
  forbiddenProperties: { channel_id: episode_id }
enforcement:
  Additional-Properties: omit
  Forbidden-Property: omit
  Required-Missing: block
  Datatype-Mismatch: block
`;

export async function writePlan(dir: string, text = PLAN, name = 'plan.yaml'): Promise<string> {
  const file = path.join(dir, name);
  await fs.writeFile(file, text);
  return file;
}

/** Every line of every quarantine file. */
export async function quarantined(store: ObjectStore): Promise<string[]> {
  const lines: string[] = [];
  for (const o of await store.list('quarantine/')) {
    if (o.key.endsWith('.jsonl')) lines.push(...(await store.get(o.key))!.toString('utf8').split('\n').filter(Boolean));
  }
  return lines;
}

const at = new Date(T0 - 60_000).toISOString();
/** Under PLAN, one message of each outcome; ids say which. */
export const MIXED = [
  track({ messageId: 'clean', event: 'product viewed', properties: { product_id: 'p1' }, timestamp: at }),
  track({ messageId: 'omitted', event: 'product viewed', properties: { product_id: 'p2', merchant_id: 'm9' }, timestamp: at }),
  track({ messageId: 'missing', event: 'product viewed', properties: {}, timestamp: at }),
  track({ messageId: 'misnamed', event: 'Product Shared', properties: { product_id: 'p3' }, timestamp: at }),
  track({ messageId: 'mistyped', event: 'product viewed', properties: { product_id: 5 }, timestamp: at }),
  { type: 'track', messageId: 'no-event', anonymousId: 'd1' },
];
