import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonMembers, jsonString } from '../src/lib/json-members.js';

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

describe('top-level JSON members as text', () => {
  it('give each named member of a serialized object as JSON.stringify writes it, through any strings and nesting', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 2000; n++) {
      const o = { type: 'track', ...(value(rnd, 0) as object), [`k${n % 3}`]: value(rnd, 1), last: value(rnd, 2) };
      const text = JSON.stringify(o);
      const names = [...Object.keys(o), 'absent'];
      const got = jsonMembers(text, names);
      assert.ok(got, text);
      for (const k of names) assert.equal(got[k], k in o ? JSON.stringify((o as Record<string, unknown>)[k]) : undefined, `${k} of ${text}`);
    }
  });

  it('keep the last of a repeated name, as JSON.parse does, and read escaped names', () => {
    assert.deepEqual(jsonMembers('{"a":1,"b":[2],"a":{"x":"}"}}', ['a', 'b']), { a: '{"x":"}"}', b: '[2]' });
    assert.deepEqual(jsonMembers('{"t\\u0079pe":"x\\"y"}', ['type']), { type: '"x\\"y"' });
    assert.deepEqual(jsonMembers('{}', ['a']), {});
  });

  it('refuse what a serializer does not write, so the caller parses it instead', () => {
    for (const bad of ['', '[1]', '"x"', '{ "a":1}', '{"a" :1}', '{"a":1 }', '{"a":1,}', '{"a":"1}', '{"a":{"b":1}', '{"a":1}x', '{"a":}', '{a:1}']) {
      assert.equal(jsonMembers(bad, ['a']), undefined, bad);
    }
  });

  it('read a member as the string it holds, or nothing when it holds another value', () => {
    assert.equal(jsonString('"plain"'), 'plain');
    assert.equal(jsonString('"tab\\there \\"q\\""'), 'tab\there "q"');
    assert.equal(jsonString('12'), undefined);
    assert.equal(jsonString(undefined), undefined);
  });
});
