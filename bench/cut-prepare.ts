/**
 * Cut-down request preparation for bench:ingest's baselines: what is left of preparing a request when the
 * work tracklake does for its tracking files is taken out. The bench's payloads are valid batches for the
 * write key `dev`, so neither handles refusals beyond what it checks.
 */
import type { PrepareResult, RawRequest } from '../src/ingest/prepare.js';
import { fingerprintInto } from '../src/lib/fingerprint.js';
import { encodeFrame } from '../src/ingest/wal.js';
import { reject } from '../src/lib/result.js';
import { splitBody, validateMessage } from '../src/segment/message.js';

/**
 * The share of a bench payload's bytes that the collector's log records take (6.1 KB of records for a
 * 10.2 KB body, measured with RequestPreparer): the log gets as many bytes as the collector's would.
 */
const RECORD_SHARE = 0.6;

const parse = (req: RawRequest) => JSON.parse(Buffer.from(req.body.buffer, req.body.byteOffset, req.body.length).toString('utf8')) as unknown;

function prepared(ids: readonly string[], frame: Uint8Array): PrepareResult {
  const fingerprints = new Int32Array(2 * ids.length);
  for (let i = 0; i < ids.length; i++) fingerprintInto('demo', ids[i]!, fingerprints, i);
  return { ok: true, value: { tenant: 'demo', messages: ids.length, rejected: [], fingerprints, frame: encodeFrame(frame) } };
}

/** The floor's: JSON.parse and the ids' fingerprints; the body itself is the record. */
export function parseOnly(req: RawRequest): PrepareResult {
  const body = parse(req) as { batch: Array<{ messageId: string }> };
  return prepared(body.batch.map((m) => m.messageId), req.body);
}

/**
 * Parsing and validating every message, as the collector does (the API's answer depends on it), and the
 * ids' fingerprints; no mapping, enrichment or CSV.
 */
export function validateOnly(req: RawRequest): PrepareResult {
  const split = splitBody(parse(req), req.pathType, req.body.length);
  if (!split.ok) return split;
  const ids: string[] = [];
  for (const raw of split.value.messages) {
    const m = validateMessage(raw, split.value.envelope);
    if (!m.ok) return reject(m.code, m.message);
    ids.push(m.value.messageId);
  }
  return prepared(ids, req.body.subarray(0, Math.round(req.body.length * RECORD_SHARE)));
}
