/**
 * The 64-bit fingerprint of a message's dedup key (tenant, NUL, messageId): two 32-bit FNV-1a variants with
 * a final avalanche. Duplicates are detected, logged and remembered by fingerprint, never by string: it is
 * computed once, where the request is prepared (often a worker thread), and travels as two integers.
 *
 * It is stored in the log and in the dedup id files, so it is part of their format: changing it would make
 * ids accepted before an upgrade look new after it. Two ids share a fingerprint with probability 2^-64 per
 * pair: a hundred million ids in the window make a wrong "duplicate" a one-in-100-billion event.
 */

/** Writes the fingerprint of (tenant, id) into out[2i] (high half) and out[2i + 1] (low half). */
export function fingerprintInto(tenant: string, id: string, out: Int32Array, i: number): void {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let k = 0; k < tenant.length; k++) {
    const c = tenant.charCodeAt(k);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  a = Math.imul(a, 0x01000193); // the NUL between tenant and id
  b = Math.imul(b, 0x5bd1e995) ^ (b >>> 15);
  for (let k = 0; k < id.length; k++) {
    const c = id.charCodeAt(k);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  // Final avalanche, so the low bits that pick a dedup slot depend on every character.
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b ^= b >>> 16;
  b = Math.imul(b, 0xc2b2ae35);
  b ^= b >>> 16;
  out[2 * i] = a;
  out[2 * i + 1] = b;
}

const one = new Int32Array(2);

/** The fingerprint of (tenant, id) as [high, low]. */
export function fingerprint(tenant: string, id: string): [number, number] {
  fingerprintInto(tenant, id, one, 0);
  return [one[0]!, one[1]!];
}
