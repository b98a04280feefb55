import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isJsonNull, isJsonString, jsonMembers } from '../src/lib/json-members.js';

/** The members' texts, read as byte ranges of the text's UTF-8. */
function members(text: string, names: string[]): Record<string, string> | undefined {
  const b = Buffer.from(text);
  const spans = jsonMembers(b, names);
  return spans && Object.fromEntries(Object.entries(spans).map(([k, s]) => [k, b.toString('utf8', s![0], s![1])]));
}

/** A deterministic random JSON value: strings with quotes, backslashes, brackets and escapes, nested objects and arrays. */
function value(rnd: () => number, depth: number): unknown {
  const pieces = ['a', '"', '\\', '\\"', '{', '}', '[', ']', ',', ':', '\n', '\u0001', 'é', '😀', ' '];
  const text = () => Array.from({ length: Math.floor(rnd() * 8) }, () => pieces[Math.floor(rnd() * pieces.length)]).join('');
  const kind = Math.floor(rnd() * (depth > 3 ? 4 : 6));
  if (kind === 0) return text();
  if (kind === 1) return Math.round((rnd() - 0.5) * 1e6) / 100;
  if (kind === 2) return rnd() < 0.5;
  if (kind === 3) return null;
  if (kind === 4) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(rnd, depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, (_, i) => [rnd() < 0.2 ? String(i) : text(), value(rnd, depth + 1)]));
}

describe('top-level JSON members as byte ranges', () => {
  it('give each named member of a serialized object as JSON.stringify writes it, through any strings and nesting', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 2000; n++) {
      const o = { type: 'track', ...(value(rnd, 0) as object), [`k${n % 3}`]: value(rnd, 1), last: value(rnd, 2) };
      const text = JSON.stringify(o);
      const names = [...Object.keys(o), 'absent'];
      const got = members(text, names);
      assert.ok(got, text);
      for (const k of names) assert.equal(got[k], k in o ? JSON.stringify((o as Record<string, unknown>)[k]) : undefined, `${k} of ${text}`);
    }
  });

  it('keep the last of a repeated name, as JSON.parse does, and read escaped names', () => {
    assert.deepEqual(members('{"a":1,"b":[2],"a":{"x":"}"}}', ['a', 'b']), { a: '{"x":"}"}', b: '[2]' });
    assert.deepEqual(members('{"t\\u0079pe":"x\\"y"}', ['type']), { type: '"x\\"y"' });
    assert.deepEqual(members('{}', ['a']), {});
  });

  it('refuse what a serializer does not write, so the caller parses it instead', () => {
    for (const bad of ['', '[1]', '"x"', '{ "a":1}', '{"a" :1}', '{"a":1 }', '{"a":1,}', '{"a":"1}', '{"a":{"b":1}', '{"a":1}x', '{"a":}', '{a:1}']) {
      assert.equal(members(bad, ['a']), undefined, bad);
    }
  });

  it('tell a member that is a string or null from other values', () => {
    const b = Buffer.from('{"s":"x\\"y","n":null,"o":{"s":"z"},"k":12,"nu":"null"}');
    const m = jsonMembers(b, ['s', 'n', 'o', 'k', 'nu'])!;
    assert.deepEqual([m.s, m.n, m.o, m.k, m.nu].map((s) => isJsonString(b, s)), [true, false, false, false, true]);
    assert.deepEqual([m.s, m.n, m.o, m.k, m.nu].map((s) => isJsonNull(b, s!)), [false, true, false, false, false]);
    assert.equal(isJsonString(b, undefined), false);
  });
});
