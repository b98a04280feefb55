import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { basic, flushed, readRows, startCollector, track } from './helpers.js';

interface Case {
  name: string;
  path: string;
  status: number;
  code: string | null;
  body?: string;
  gen?: string;
  method?: string;
  headers?: Record<string, string>;
}

const cases = JSON.parse(readFileSync(new URL('../../test/fixtures/bad-inputs.json', import.meta.url), 'utf8')) as Case[];
const BAD = { type: 'track', event: 'x', anonymousId: 'BAD', properties: { correlation_id: 'BAD' } };

function generated(gen: string): Buffer | string {
  switch (gen) {
    case 'deep': {
      // 100 000 levels: deeper than any recursive walk could survive.
      return `{"type":"track","event":"x","anonymousId":"BAD","properties":{"nested":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    }
    case 'bigprop':
      return JSON.stringify({ ...BAD, properties: { correlation_id: 'BAD', s: 'x'.repeat(100_000) } });
    case 'bigrequest':
      return JSON.stringify({ batch: Array.from({ length: 100 }, () => ({ ...BAD, properties: { s: 'y'.repeat(6000) } })) });
    case 'gzipbomb':
      return gzipSync(Buffer.concat([Buffer.from('{"batch":[{"type":"track","event":"x","anonymousId":"BAD","properties":{"s":"'), Buffer.alloc(100 * 1024 * 1024, 0x61), Buffer.from('"}}]}')]));
    case 'badutf8':
      return Buffer.concat([Buffer.from('{"type":"track","event":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('","anonymousId":"BAD"}')]);
    case 'bigbatch':
      return JSON.stringify({ batch: Array.from({ length: 2501 }, () => ({ type: 'track' })) });
    default:
      throw new Error(`unknown generator ${gen}`);
  }
}

describe('the bad-input corpus', () => {
  it('has at least 50 cases', () => assert.ok(cases.length >= 50, String(cases.length)));

  it('answers each case with a clear error, stays up, writes nothing invalid and loses nothing valid', async () => {
    const c = await startCollector();
    try {
      const validIds: string[] = [];
      for (const [i, k] of cases.entries()) {
        const gz = k.gen === 'gzipbomb';
        const res = await fetch(`${c.url}${k.path}`, {
          method: k.method ?? 'POST',
          headers: { authorization: basic('dev'), 'content-type': 'application/json', ...(gz ? { 'content-encoding': 'gzip' } : {}), ...(k.headers ?? {}) },
          body: (k.method ?? 'POST') === 'GET' ? undefined : k.gen ? generated(k.gen) : (k.body ?? ''),
        });
        const text = await res.text();
        assert.equal(res.status, k.status, `${k.name}: ${text.slice(0, 300)}`);
        const json = JSON.parse(text) as { code?: string; message?: string; success: boolean };
        if (k.code) {
          assert.equal(json.code, k.code, `${k.name}: ${text.slice(0, 300)}`);
          assert.ok(json.message && json.message.length > 10, `${k.name} has no human message`);
          assert.equal(json.success, false);
        }
        // The next valid request, right after the bad one, is accepted.
        const id = `valid-${i}`;
        const ok = await fetch(`${c.url}/v1/track`, { method: 'POST', headers: { authorization: basic('dev'), 'content-type': 'application/json' }, body: JSON.stringify(track({ messageId: id, properties: { correlation_id: id, product_id: 'p' } })) });
        assert.equal(ok.status, 200, `valid request after "${k.name}"`);
        validIds.push(id);
      }
      // A valid message beside invalid ones in one batch is kept.
      const mixed = await fetch(`${c.url}/v1/batch`, { method: 'POST', headers: { authorization: basic('dev'), 'content-type': 'application/json' }, body: JSON.stringify({ batch: [BAD, { ...BAD, event: '' }, track({ messageId: 'beside', properties: { correlation_id: 'beside' } })] }) });
      assert.equal(mixed.status, 200);
      validIds.push('beside');

      await flushed(c);
      const rows = await readRows(c.store);
      const byCorrelation = new Map(rows.map((r) => [r.correlationid, r]));
      for (const id of validIds) assert.ok(byCorrelation.has(id), `valid event ${id} is missing`);
      // Only the accepted oddities reached a file, intact.
      assert.deepEqual(rows.filter((r) => r.deviceid === 'BAD').map((r) => r.event), ['x']); // the one valid BAD in the mixed batch
      assert.ok(rows.every((r) => r.tenantid === 'demo'));
      const proto = rows.find((r) => r.deviceid === 'PROTO')!;
      assert.equal(proto.productid, '');
      const ctor = rows.find((r) => r.deviceid === 'CTOR')!;
      assert.equal(ctor.productid, '');
      const csv = rows.find((r) => r.deviceid === 'CSV')!;
      assert.equal(csv.productid, 'a,"b"\nc');
      assert.equal(csv.merchantid, '=cmd|x');
      assert.equal((await fetch(`${c.url}/health`)).status, 200);
    } finally {
      await c.close();
    }
  });
});
