/**
 * The top-level members of a JSON object as byte ranges of its UTF-8 text, without parsing the object or
 * decoding the text: a consumer that only passes a few members on as JSON (the Postgres destination's
 * properties and context columns) needs neither the objects JSON.parse would build, nor JSON.stringify to
 * write them out again, nor the message as a string. For bench:ingest's messages (490 bytes) the Postgres
 * destination's rows took 3.9–4.6 µs a message with the first version, which scanned the message decoded
 * to a string and copied each member out as one; over the bytes, 3.4–3.6 (interleaved runs).
 *
 * The scanner follows the structure only: strings (with their escapes) and the nesting of objects and arrays.
 * It does not validate what it skips, so it is for text a JSON serializer wrote (a message the collector
 * logged); anything else (whitespace between tokens included) is refused with undefined, and the caller
 * parses instead.
 */

/** A member's bytes: [start, end) of the text it was read from. */
export type Span = readonly [start: number, end: number];

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Where the string that starts with the quote at `at` ends (the index after its closing quote); -1 if never. */
function stringEnd(b: Uint8Array, at: number, end: number): number {
  for (let i = at + 1; i < end; i++) {
    const c = b[i]!;
    if (c === BACKSLASH) i++; // the escaped byte (or a \u escape's first) is no quote
    else if (c === QUOTE) return i + 1;
  }
  return -1;
}

/** Where the object or array that starts at `at` ends (the index after its closing bracket); -1 if never. */
function nestedEnd(b: Uint8Array, at: number, end: number): number {
  let depth = 0;
  for (let i = at; i < end; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      const close = stringEnd(b, i, end);
      if (close < 0) return -1;
      i = close - 1;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth === 0) return i + 1;
  }
  return -1;
}

/** Bytes a number, true, false or null is written with. */
const PRIMITIVE = new Uint8Array(128);
for (const c of '0123456789-+.eEtrufalsn') PRIMITIVE[c.charCodeAt(0)] = 1;

/** Where a value that starts at `at` ends, or -1 when it is not a value of compact JSON. */
function valueEnd(b: Uint8Array, at: number, end: number): number {
  const c = b[at];
  if (c === QUOTE) return stringEnd(b, at, end);
  if (c === 0x7b || c === 0x5b) return nestedEnd(b, at, end);
  let i = at;
  while (i < end && b[i]! < 128 && PRIMITIVE[b[i]!] === 1) i++;
  return i > at ? i : -1;
}

/** Whether bytes [start, end) hold an escape. */
function escaped(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] === BACKSLASH) return true;
  return false;
}

/** Whether bytes [start, end) are the name in UTF-8 (compared byte by byte while it is ASCII). */
function isName(b: Uint8Array, start: number, end: number, name: string): boolean {
  if (end - start < name.length) return false; // never fewer bytes than UTF-16 units
  for (let k = 0; k < name.length; k++) {
    const c = name.charCodeAt(k);
    if (c >= 0x80) return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8') === name;
    if (b[start + k] !== c) return false;
  }
  return end - start === name.length;
}

/**
 * The bytes of each top-level member of the object in b[start, end) whose name is one of `names` (the last
 * one, where a name repeats, as JSON.parse keeps); undefined when it is not a compact JSON object.
 */
export function jsonMembers<K extends string>(b: Uint8Array, names: readonly K[], start = 0, end = b.length): Partial<Record<K, Span>> | undefined {
  const out: Partial<Record<K, Span>> = {};
  if (b[start] !== 0x7b) return undefined;
  let at = start + 1;
  if (b[at] === 0x7d) return at + 1 === end ? out : undefined;
  for (;;) {
    if (b[at] !== QUOTE) return undefined;
    const keyEnd = stringEnd(b, at, end);
    if (keyEnd < 0 || b[keyEnd] !== 0x3a) return undefined;
    const valueAt = keyEnd + 1;
    const close = valueEnd(b, valueAt, end);
    if (close < 0) return undefined;
    const key = escaped(b, at + 1, keyEnd - 1) ? (JSON.parse(Buffer.from(b.buffer, b.byteOffset + at, keyEnd - at).toString('utf8')) as string) : undefined;
    for (const n of names) if (key === undefined ? isName(b, at + 1, keyEnd - 1, n) : key === n) out[n] = [valueAt, close];
    const next = b[close];
    if (next === 0x7d) return close + 1 === end ? out : undefined;
    if (next !== 0x2c) return undefined;
    at = close + 1;
  }
}

/** Whether a member's bytes are a JSON string. */
export const isJsonString = (b: Uint8Array, s: Span | undefined): s is Span => s !== undefined && b[s[0]] === QUOTE;

/** Whether a member's bytes are JSON's null. */
export const isJsonNull = (b: Uint8Array, s: Span) => isName(b, s[0], s[1], 'null');
