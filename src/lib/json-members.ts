/**
 * The top-level members of a JSON object as their source text, without parsing the object: a consumer that
 * only passes a few members on as JSON (the Postgres destination's properties and context columns) needs
 * neither the objects JSON.parse would build nor JSON.stringify to write them out again. For bench:ingest's
 * messages (530 bytes), with the first version of the scanner: 1.8 µs a message, where JSON.parse took 2.1
 * and stringifying two members 1.2.
 *
 * The scanner follows the structure only: strings (with their escapes) and the nesting of objects and arrays.
 * It does not validate what it skips, so it is for text a JSON serializer wrote (a message the collector
 * logged); anything else (whitespace between tokens included) is refused with undefined, and the caller
 * parses instead.
 */

/** Where the string that starts with the quote at `at` ends (the index after its closing quote); -1 if never. */
function stringEnd(s: string, at: number): number {
  for (let from = at + 1; ; ) {
    const q = s.indexOf('"', from);
    if (q < 0) return -1;
    let slashes = 0;
    while (s.charCodeAt(q - 1 - slashes) === 0x5c) slashes++;
    if (slashes % 2 === 0) return q + 1; // not escaped: an even run of backslashes escapes itself
    from = q + 1;
  }
}

/**
 * Where the object or array that starts at `at` ends (the index after its closing bracket); -1 if never.
 * A plain loop over the characters, jumping over strings: it replaced a regular expression that found each
 * bracket and quote, which the profile showed as the scan's largest cost (not measured on its own since).
 */
function nestedEnd(s: string, at: number): number {
  let depth = 0;
  for (let i = at; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) {
      const end = stringEnd(s, i);
      if (end < 0) return -1;
      i = end - 1;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth === 0) return i + 1;
  }
  return -1;
}

/** Where a value that starts at `at` ends, or -1 when it is not a value of compact JSON. */
function valueEnd(s: string, at: number): number {
  const c = s.charCodeAt(at);
  if (c === 0x22) return stringEnd(s, at);
  if (c === 0x7b || c === 0x5b) return nestedEnd(s, at);
  PRIMITIVE.lastIndex = at;
  return PRIMITIVE.test(s) ? PRIMITIVE.lastIndex : -1;
}

/** A number, true, false or null, as JSON writes them. */
const PRIMITIVE = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

/**
 * The source text of each top-level member of the object `s` whose name is in `names` (the last one, where a
 * name repeats, as JSON.parse keeps); undefined when `s` is not a compact JSON object.
 */
export function jsonMembers<K extends string>(s: string, names: readonly K[]): Partial<Record<K, string>> | undefined {
  const out: Partial<Record<K, string>> = {};
  if (s.charCodeAt(0) !== 0x7b) return undefined;
  let at = 1;
  if (s.charCodeAt(at) === 0x7d) return at + 1 === s.length ? out : undefined;
  for (;;) {
    if (s.charCodeAt(at) !== 0x22) return undefined;
    const keyEnd = stringEnd(s, at);
    if (keyEnd < 0 || s.charCodeAt(keyEnd) !== 0x3a) return undefined;
    const raw = s.slice(at + 1, keyEnd - 1);
    const key = raw.includes('\\') ? (JSON.parse(s.slice(at, keyEnd)) as string) : raw;
    const end = valueEnd(s, keyEnd + 1);
    if (end < 0) return undefined;
    if ((names as readonly string[]).includes(key)) out[key as K] = s.slice(keyEnd + 1, end);
    const next = s.charCodeAt(end);
    if (next === 0x7d) return end + 1 === s.length ? out : undefined;
    if (next !== 0x2c) return undefined;
    at = end + 1;
  }
}

/** A member's text as the string it holds, or undefined when it is not a JSON string. */
export function jsonString(text: string | undefined): string | undefined {
  if (text === undefined || text.charCodeAt(0) !== 0x22) return undefined;
  return text.includes('\\') ? (JSON.parse(text) as string) : text.slice(1, -1);
}
