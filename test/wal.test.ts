import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import { decodeRecords, encodeRecords, readRecords, type WalRecord } from '../src/ingest/records.js';
import { segmentObjects } from '../src/ingest/shipper.js';
import { WriteAheadLog, decodeSegment, encodeFrame } from '../src/ingest/wal.js';
import { tempDir } from './helpers.js';

const frame = (payload: string) => encodeFrame(payload);
const texts = (payloads: Buffer[]) => payloads.map((p) => p.toString());

describe('the write-ahead log', () => {
  it('recovers every complete frame and cuts a torn tail', async () => {
    const dir = tempDir('wal');
    const wal = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20, nodeId: 'n1' });
    await wal.append(frame('a\nb'));
    await wal.append(frame('c'));
    // Simulate a crash in the middle of writing the next frame.
    const seg = path.join(dir, 'seg-000000000001.log');
    await fs.appendFile(seg, frame('torn apart').subarray(0, 16));
    await fs.rm(path.join(dir, 'LOCK'));
    const again = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20 });
    assert.equal(again.nodeId, 'n1');
    assert.deepEqual(again.sealed(), [1]);
    assert.deepEqual(texts(await again.read(1)), ['a\nb', 'c']);
    assert.equal((await fs.readFile(seg)).length, frame('a\nb').length + frame('c').length);
    await again.close();
  });

  it('stops at a frame whose checksum or length does not match', () => {
    const good = frame('x');
    const bad = Buffer.from(good.toString().replace('x', 'y'));
    assert.deepEqual(decodeSegment(Buffer.concat([good, bad, good])), { payloads: [Buffer.from('x')], validBytes: good.length });
    const longer = Buffer.from(good.toString().replace(/ (\d+)\n/, (_, n: string) => ` ${Number(n) + 1}\n`));
    assert.equal(decodeSegment(Buffer.concat([good, longer, good])).validBytes, good.length);
  });

  it('still reads a log written in the first format (one JSON line per append)', () => {
    const old: WalRecord[] = [{ id: 'old', tn: 'acme', at: 5, r: [['t', '2026-03-15', '5,acme,"a ""b"""']] }];
    const json = JSON.stringify(old);
    const line = `${(zlib.crc32(json) >>> 0).toString(16).padStart(8, '0')} ${json}\n`;
    const both = Buffer.concat([Buffer.from(line), frame(encodeRecords(old))]);
    const { payloads, validBytes } = decodeSegment(both);
    assert.equal(validBytes, both.length);
    assert.deepEqual(payloads.flatMap(decodeRecords), [...old, ...old]);
  });

  it('carries tracking records through the log byte for byte, whatever their CSV holds', () => {
    const records: WalRecord[] = [
      { id: 'm:1', tn: 'acme', at: 1773532800000, r: [['t', '2026-03-15', '1,acme,"a ""quoted"", comma",x\ny,é😀,12:34'], ['t', '2026-03-14', '']] },
      { id: '7:8:9', tn: 't', at: 0, r: [] },
      { id: 'ü', tn: 'acme', at: 5, r: [['i', '2026-03-15', '5,acme,d,u,']] },
    ];
    const payload = encodeRecords(records);
    const [decoded] = decodeSegment(frame(payload)).payloads;
    assert.deepEqual(decodeRecords(decoded!), records);
    assert.throws(() => decodeRecords(Buffer.from(payload).subarray(0, -3)), /bad log record/);
    assert.throws(() => decodeRecords(Buffer.from(payload.replace(/t2026-03-14/, 'q2026-03-14'))), /bad row kind/);
    assert.throws(() => readRecords(Buffer.from('x:'), { record: () => undefined }), /bad log record/);
  });

  it('ships a segment as one file per kind and day, header first, lines in log order', () => {
    const a: WalRecord[] = [{ id: '1', tn: 'acme', at: 9, r: [['t', '2026-03-15', 'l1'], ['t', '2026-03-14', 'old,"x\ny"']] }];
    const b: WalRecord[] = [{ id: '2', tn: 'acme', at: 10, r: [['i', '2026-03-15', 'i1'], ['t', '2026-03-15', 'l2']] }];
    const { objects, ids } = segmentObjects([a, b].map((r) => Buffer.from(encodeRecords(r))), 'n1', 7);
    assert.deepEqual(ids, [['acme', '1', 9], ['acme', '2', 10]]);
    const files = Object.fromEntries(objects.map((o) => [o.key, o.body.toString()]));
    assert.deepEqual(Object.keys(files), ['identities/2026/03/15/n1-000000000007.csv', 'tracks/2026/03/14/n1-000000000007.csv', 'tracks/2026/03/15/n1-000000000007.csv']);
    assert.match(files['tracks/2026/03/15/n1-000000000007.csv']!, /^time,tenantid,[^\n]*,source\nl1\nl2\n$/);
    assert.match(files['tracks/2026/03/14/n1-000000000007.csv']!, /\nold,"x\ny"\n$/);
    assert.match(files['identities/2026/03/15/n1-000000000007.csv']!, /^time,tenantid,deviceid,accountid,previousid\ni1\n$/);
  });

  it('commits concurrent appends together and never reuses a segment number', async () => {
    const dir = tempDir('wal');
    const wal = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20 });
    await Promise.all(Array.from({ length: 200 }, (_, i) => wal.append(frame(String(i)))));
    await wal.seal();
    await wal.append(frame('next'));
    await wal.seal();
    assert.deepEqual(wal.sealed(), [1, 2]);
    assert.equal((await wal.read(1)).length, 200);
    await wal.release(1);
    await wal.release(2);
    await wal.close();
    const again = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20 });
    await again.append(frame('after restart'));
    await again.seal();
    assert.deepEqual(again.sealed(), [4]);
    await again.close();
  });

  it('refuses a second process on the same log folder', async () => {
    const dir = tempDir('wal');
    await fs.writeFile(path.join(dir, 'LOCK'), String(process.ppid));
    await assert.rejects(WriteAheadLog.open(dir, { maxSegmentBytes: 1024 }), /in use by process/);
  });
});

describe('the dedup index', () => {
  it('knows every id of the window, per tenant, through growth, expiry and release', async () => {
    const { DedupIndex } = await import('../src/ingest/dedup.js');
    const { ManualClock } = await import('../src/lib/clock.js');
    const clock = new ManualClock(Date.parse('2026-03-15T00:00:00Z'));
    const index = new DedupIndex(3600_000, clock);
    const n = 200_000;
    for (let i = 0; i < n; i++) assert.equal(index.reserve('acme', `id-${i}`, clock.now()), true);
    for (let i = 0; i < n; i += 997) assert.equal(index.reserve('acme', `id-${i}`, clock.now()), false, `id-${i} is a duplicate`);
    assert.equal(index.reserve('other', 'id-5', clock.now()), true, 'the same id for another tenant is new');
    index.release('acme', 'id-7');
    assert.equal(index.reserve('acme', 'id-7', clock.now()), true, 'a released id is accepted again');
    clock.advance(3600_000 + 1);
    assert.equal(index.reserve('acme', 'id-9', clock.now()), true, 'an id outside the window is new again');
    assert.equal(index.reserve('acme', 'id-9', clock.now()), false);
    index.prune();
    assert.equal(index.size, 1);
  });
});

describe('the dedup id files', () => {
  it('are written for a segment of 300 000 messages (no argument-spreading limits)', async () => {
    const { writeIdsFile, readIdsFiles } = await import('../src/ingest/dedup.js');
    const dir = tempDir('ids');
    const entries = Array.from({ length: 300_000 }, (_, i): [string, string, number] => ['t', `m${i}`, 1_000 + i]);
    await writeIdsFile(dir, 1, entries);
    const back = await readIdsFiles(dir, 0);
    assert.equal(back.length, 300_000);
    assert.deepEqual(back[299_999], ['t', 'm299999', 300_999]);
  });
});
