import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import { ConfigError } from '../src/lib/errors.js';
import { fingerprint } from '../src/lib/fingerprint.js';
import { decodeRecords, encodeRecords, keptRecords, readRecords, type RowKind, type WalRecord } from '../src/ingest/records.js';
import { segmentObjects } from '../src/ingest/shipper.js';
import { WriteAheadLog, decodeSegment, encodeFrame, readSegmentFrames } from '../src/ingest/wal.js';
import { headerOf, LAKE } from '../src/lake/layout.js';
import { TRACK_COLUMNS } from '../src/tracking/columns.js';
import { ReusedBuffer } from '../src/lib/reused-buffer.js';
import { tempDir } from './helpers.js';

const frame = (payload: string | Buffer) => encodeFrame(typeof payload === 'string' ? Buffer.from(payload) : payload);

/** The text record layout of tracklake 0.2, as its collectors wrote it (logs left by one are still read). */
function encodeTextRecords(records: readonly WalRecord[]): string {
  const str = (s: string) => `${Buffer.byteLength(s)}:${s}`;
  let out = '';
  for (const rec of records) {
    out += `${str(rec.id)}${str(rec.tn)}${rec.at}:${rec.r.length}:`;
    for (const [kind, day, line] of rec.r) out += `${kind}${day}${str(line)}`;
  }
  return out;
}
const texts = (payloads: Buffer[]) => payloads.map((p) => p.toString());

/**
 * The binary layout as collectors wrote it before 2026-12-06 (logs left by one are still read): a record's
 * forwarded (`m`) row among its other rows.
 */
function encodeInterleaved(records: readonly WalRecord[]): Buffer {
  const parts = [Buffer.from('~')];
  for (const rec of records) {
    const head = Buffer.alloc(20);
    const [hi, lo] = fingerprint(rec.tn, rec.id);
    head.writeInt32LE(hi, 0);
    head.writeInt32LE(lo, 4);
    head.writeDoubleLE(rec.at, 8);
    head.writeUInt32LE(rec.r.length, 16);
    parts.push(head);
    for (const [kind, day, line] of rec.r) {
      const row = Buffer.alloc(15);
      row.write(kind + day, 'latin1');
      row.writeUInt32LE(Buffer.byteLength(line), 11);
      parts.push(row, Buffer.from(line));
    }
  }
  return Buffer.concat(parts);
}

/** The rows readRecords visits, as [kind, line] per record. */
function rowsRead(payload: Buffer, forwarded?: false): Array<Array<[RowKind, string]>> {
  const out: Array<Array<[RowKind, string]>> = [];
  readRecords(payload, { record: () => void out.push([]), row: (kind, _day, p, start, end) => void out.at(-1)!.push([kind, p.toString('utf8', start, end)]), ...(forwarded === false ? { forwarded } : {}) });
  return out;
}

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

  it('refuse another node id while the log holds segments not yet shipped, and take one once it is empty', async () => {
    const dir = tempDir('wal');
    const wal = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20, nodeId: 'edge' });
    await wal.append(frame('unshipped'));
    await wal.close();
    await assert.rejects(WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20, nodeId: 'edge-eu' }), (e: unknown) => e instanceof ConfigError && e.setting === 'nodeId' && /1 segment\(s\) written as node "edge"/.test(e.message));
    const same = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20, nodeId: 'edge' });
    assert.deepEqual(texts(await same.read(1)), ['unshipped'], 'nothing lost by the refusal');
    await same.release(1);
    await same.close();
    const renamed = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20, nodeId: 'edge-eu' });
    assert.equal(renamed.nodeId, 'edge-eu');
    await renamed.close();
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
    const both = Buffer.concat([Buffer.from(line), frame(encodeTextRecords(old)), frame(encodeRecords(old))]);
    const { payloads, validBytes } = decodeSegment(both);
    assert.equal(validBytes, both.length);
    const [hi, lo] = fingerprint('acme', 'old');
    const expected = { hi, lo, at: 5, r: old[0]!.r };
    assert.deepEqual(payloads.flatMap(decodeRecords), [expected, expected, expected]);
  });

  it('carries tracking records through the log byte for byte, whatever their CSV holds', () => {
    const records: WalRecord[] = [
      { id: 'm:1', tn: 'acme', at: 1773532800000, r: [['t', '2026-03-15', '1,acme,"a ""quoted"", comma",x\ny,é😀,12:34'], ['t', '2026-03-14', '']] },
      { id: '7:8:9', tn: 't', at: 0, r: [] },
      { id: 'ü', tn: 'acme', at: 5, r: [['i', '2026-03-15', '5,acme,d,u,']] },
    ];
    // Plan rows (violations, quarantined messages) travel in the current layout only.
    const planned: WalRecord = { id: 'b', tn: 'acme', at: 6, r: [['q', '2026-03-15', '{"message":{"a":"ü"}}'], ['v', '2026-03-15', '6,acme,b,x,Unplanned-Event,event,"""not"" planned",block']] };
    const [bh, bl] = fingerprint('acme', 'b');
    assert.deepEqual(decodeRecords(encodeRecords([planned])), [{ hi: bh, lo: bl, at: 6, r: planned.r }]);
    const payload = encodeRecords(records);
    const [decoded] = decodeSegment(frame(payload)).payloads;
    const byFingerprint = records.map((r) => {
      const [hi, lo] = fingerprint(r.tn, r.id);
      return { hi, lo, at: r.at, r: r.r };
    });
    assert.deepEqual(decodeRecords(decoded!), byFingerprint);
    assert.deepEqual(decodeRecords(Buffer.from(encodeTextRecords(records))), byFingerprint, 'the text layout of 0.2 reads the same');
    assert.throws(() => decodeRecords(payload.subarray(0, -3)), /bad log record/);
    const kind = Buffer.from(payload);
    kind[kind.indexOf('t2026-03-14')] = 0x78;
    assert.throws(() => decodeRecords(kind), /bad row kind/);
    assert.throws(() => readRecords(Buffer.from('x:'), { record: () => undefined }), /bad log record/);
  });

  it('keeps forwarded messages after the records, read with their record, skipped unread by the shipper', async () => {
    const m = (s: string) => `acme\t0\t5\t"Order Completed"\t{"event":"${s}"}`;
    const records: WalRecord[] = [
      { id: 'a', tn: 'acme', at: 5, r: [['t', '2026-03-15', 't1'], ['t', '2026-03-15', 't2'], ['q', '2026-03-15', '{"q":1}'], ['m', '2026-03-15', m('é a')]] },
      { id: 'b', tn: 'acme', at: 6, r: [['i', '2026-03-15', 'i1']] },
      { id: 'c', tn: 'acme', at: 7, r: [['m', '2026-03-14', m('c')]] },
    ];
    const split = encodeRecords(records);
    const interleaved = encodeInterleaved(records);
    assert.equal(String.fromCharCode(split[0]!, interleaved[0]!), '^~');
    const all = records.map((r) => r.r.map(([kind, , line]) => [kind, line]));
    const tracking = records.map((r) => r.r.filter(([kind]) => kind !== 'm').map(([kind, , line]) => [kind, line]));
    for (const payload of [split, interleaved]) {
      assert.deepEqual(rowsRead(payload), all, 'every row, the forwarded one with its record');
      assert.deepEqual(rowsRead(payload, false), tracking, 'forwarded rows left out');
      assert.deepEqual(decodeRecords(payload).map((r) => r.r.map(([, day]) => day)), records.map((r) => r.r.map(([, day]) => day)));
      // Duplicates taken out: the kept records with their own forwarded rows, in the layout they came in.
      for (const keep of [[0, 2], [2], [1], [0, 1, 2]]) {
        const kept = Buffer.concat(keptRecords(payload, keep));
        assert.deepEqual(rowsRead(kept), keep.map((i) => all[i]), `keep ${keep.join()}`);
        assert.equal(kept[0], keep.some((i) => i !== 1) ? payload[0] : 0x7e);
      }
      const shipped = (await segmentObjects([payload], 'n1', 1)).objects.map((o) => [o.key, o.body.toString()]);
      assert.deepEqual(shipped.map(([k]) => k), ['identities/2026/03/15/n1-000000000001.csv', 'quarantine/2026/03/15/n1-000000000001.jsonl', 'tracks/2026/03/15/n1-000000000001.csv']);
      assert.match(shipped[2]![1]!, /\nt1\nt2\n$/);
    }
    // The shipper does not even read them: a forwarded row gone bad fails only the walks that want it.
    const bad = Buffer.from(split);
    bad[bad.indexOf('m2026-03-15')] = 0x78;
    assert.deepEqual(rowsRead(bad, false), tracking);
    assert.throws(() => rowsRead(bad), /bad log record at byte \d+: bad row kind/);
    const orphan = Buffer.from(split);
    orphan.writeUInt32LE(7, orphan.readUInt32LE(orphan.length - 4));
    assert.throws(() => rowsRead(orphan), /a forwarded row of no record \(index 7 of 3\)/);
    const offset = Buffer.from(split);
    offset.writeUInt32LE(offset.length, offset.length - 4);
    assert.throws(() => rowsRead(offset, false), /bad forwarded rows offset/);
    assert.throws(() => rowsRead(split.subarray(0, 3)), /bad forwarded rows offset/);
  });

  it('ships a segment as one file per kind and day, header first, lines in log order', async () => {
    const a: WalRecord[] = [{ id: '1', tn: 'acme', at: 9, r: [['t', '2026-03-15', 'l1'], ['t', '2026-03-14', 'old,"x\ny"']] }];
    const b: WalRecord[] = [{ id: '2', tn: 'acme', at: 10, r: [['i', '2026-03-15', 'i1'], ['t', '2026-03-15', 'l2']] }];
    const { objects, ids, records, oldest, newest } = await segmentObjects([a, b].map((r) => encodeRecords(r)), 'n1', 7);
    assert.deepEqual([records, oldest, newest], [2, 9, 10]);
    const [h1, l1] = fingerprint('acme', '1');
    const [h2, l2] = fingerprint('acme', '2');
    assert.deepEqual([ids.readInt32LE(0), ids.readInt32LE(4), ids.readDoubleLE(8), ids.readInt32LE(16), ids.readInt32LE(20), ids.readDoubleLE(24)], [h1, l1, 9, h2, l2, 10]);
    const files = Object.fromEntries(objects.map((o) => [o.key, o.body.toString()]));
    assert.deepEqual(Object.keys(files), ['identities/2026/03/15/n1-000000000007.csv', 'tracks/2026/03/14/n1-000000000007.csv', 'tracks/2026/03/15/n1-000000000007.csv']);
    assert.match(files['tracks/2026/03/15/n1-000000000007.csv']!, /^time,tenantid,[^\n]*,source\nl1\nl2\n$/);
    assert.match(files['tracks/2026/03/14/n1-000000000007.csv']!, /\nold,"x\ny"\n$/);
    assert.match(files['identities/2026/03/15/n1-000000000007.csv']!, /^time,tenantid,deviceid,accountid,previousid\ni1\n$/);
    // Cut into one reused buffer (as the shipper cuts one segment after another): the same objects each time.
    const bodies = new ReusedBuffer();
    const cut = async (rs: WalRecord[][], seq: number) => (await segmentObjects(rs.map((r) => encodeRecords(r)), 'n1', seq, undefined, undefined, bodies)).objects;
    const first = await cut([a, b], 7);
    assert.deepEqual(Object.fromEntries(first.map((o) => [o.key, o.body.toString()])), files);
    const other = await cut([b], 9);
    assert.deepEqual(other.map((o) => o.body.buffer), [first[0]!.body.buffer, first[0]!.body.buffer], 'the same memory');
    assert.deepEqual(other.map((o) => o.body.toString()), [`${headerOf(LAKE.identities)}\ni1\n`, `${headerOf(LAKE.tracks)}\nl2\n`]);
  });

  it('cuts a large segment in log order, serving the event loop meanwhile', async () => {
    const lines: string[] = [];
    const payloads = Array.from({ length: 300 }, (_, p) => {
      const records: WalRecord[] = Array.from({ length: 20 }, (_, i) => {
        const line = `${p * 20 + i},acme,"q ""${p}""",x`;
        lines.push(line);
        return { id: `m${p}-${i}`, tn: 'acme', at: 1000 + p, r: [['t', '2026-03-15', line]] };
      });
      return encodeRecords(records);
    });
    let served = 0;
    const ticker = setInterval(() => served++, 0);
    const { objects, records, oldest, newest } = await segmentObjects(payloads, 'n1', 8);
    clearInterval(ticker);
    assert.deepEqual([records, oldest, newest], [6000, 1000, 1299]);
    assert.equal(objects.length, 1);
    assert.equal(objects[0]!.rows, 6000);
    assert.equal(objects[0]!.body.toString(), `${TRACK_COLUMNS.join(',')}\n${lines.join('\n')}\n`);
    assert.ok(served > 0, 'the event loop ran while the segment was cut');
  });

  it('reads a sealed segment of several decoding slices back whole and in order', async () => {
    const dir = tempDir('wal');
    const wal = await WriteAheadLog.open(dir, { maxSegmentBytes: 64 << 20 });
    const big = (i: number) => Buffer.alloc(100_000, 0x61 + (i % 26)); // 13 MB in all: several read slices
    await Promise.all(Array.from({ length: 130 }, (_, i) => wal.append(frame(big(i)))));
    await wal.seal();
    const payloads = await wal.read(1);
    assert.equal(payloads.length, 130);
    payloads.forEach((p, i) => assert.ok(p.equals(big(i)), `payload ${i}`));
    await wal.close();
  });

  it('reads acknowledged frames from any place, in slices, and from another thread through its span', async () => {
    const dir = tempDir('wal');
    const wal = await WriteAheadLog.open(dir, { maxSegmentBytes: 64 << 20 });
    const seq = wal.head;
    await wal.append(frame('a'));
    await wal.append(frame('b'));
    const first = await wal.readFrom(seq, 0);
    assert.deepEqual(texts(first.frames.map((f) => f.payload)), ['a', 'b']);
    // A reader coming later gets what was acknowledged since as well; the active segment is never done.
    await wal.append(frame('c'));
    const later = await wal.readFrom(seq, 0);
    assert.deepEqual(texts(later.frames.map((f) => f.payload)), ['a', 'b', 'c']);
    assert.deepEqual({ next: later.next, done: later.done }, { next: wal.segmentBytes(seq), done: false });
    assert.deepEqual(texts((await wal.readFrom(seq, first.frames[0]!.end)).frames.map((f) => f.payload)), ['b', 'c']);
    // Large frames: whole and in order, in slices of about the size asked (a frame larger than it whole).
    const big = (i: number) => Buffer.alloc(300_000, 0x61 + (i % 26));
    for (let i = 0; i < 30; i++) await wal.append(frame(big(i))); // 9 MB: more than one of readWhole's reads
    const seen: Buffer[] = [];
    for (let at = 0; at < wal.segmentBytes(seq); ) {
      const r = await wal.readFrom(seq, at, 100_000);
      assert.ok(r.frames.length >= 1);
      seen.push(...r.frames.map((f) => f.payload));
      at = r.next;
    }
    assert.equal(seen.length, 33);
    seen.slice(3).forEach((p, i) => assert.ok(p.equals(big(i)), `payload ${i}`));
    // Another thread reads the same frames from the span's file, up to the acknowledged end.
    const span = wal.span(seq);
    assert.deepEqual({ end: span.end, sealed: span.sealed }, { end: wal.segmentBytes(seq), sealed: false });
    const there = await readSegmentFrames(span.paths, first.frames[0]!.end, span.end, 1 << 20);
    assert.deepEqual(texts(there!.slice(0, 2).map((f) => f.payload)), ['b', 'c']);
    // A reader that reads slice after slice into one buffer gets each slice right, in the same memory.
    const reads = new ReusedBuffer();
    const buffers = new Set<ArrayBufferLike>();
    const again: Buffer[] = [];
    for (let at = 0; at < span.end; ) {
      const frames = (await readSegmentFrames(span.paths, at, span.end, 400_000, reads))!;
      buffers.add(frames[0]!.payload.buffer);
      again.push(...frames.map((f) => Buffer.from(f.payload)));
      at = frames.at(-1)!.end;
    }
    assert.deepEqual(again.map((p) => p.toString('hex')), seen.map((p) => p.toString('hex')));
    assert.equal(buffers.size, 1, 'one buffer for every slice');
    await wal.seal();
    // A sealed segment read whole into a reader's buffer (as the shipper reads) is the same payloads.
    const whole = await wal.read(seq, reads);
    assert.deepEqual(whole.map((p) => p.toString('hex')), seen.map((p) => p.toString('hex')));
    assert.equal(wal.span(seq).sealed, true);
    assert.equal((await wal.readFrom(seq, wal.segmentBytes(seq))).done, true);
    assert.equal(await readSegmentFrames([path.join(dir, 'nothing.log')], 0, 10, 10), undefined, 'a file that is gone');
    await wal.close();
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

  it('refuses a folder it cannot make, naming the setting, instead of failing later or hanging', { timeout: 10_000 }, async () => {
    const file = path.join(tempDir('wal'), 'a-file');
    await fs.writeFile(file, '');
    await assert.rejects(WriteAheadLog.open(path.join(file, 'wal'), { maxSegmentBytes: 1024 }), /invalid setting "walDir": cannot make the log folder .*ENOTDIR/);
    // Under /proc, mkdir answers ENOENT though the parent exists; Node's own recursive mkdir never returns there.
    await assert.rejects(WriteAheadLog.open('/proc/tracklake-test/wal', { maxSegmentBytes: 1024 }), /invalid setting "walDir": cannot make the log folder .*ENOENT/);
  });
});

describe('the dedup fingerprint', () => {
  it('stays what logs and id files already hold (it is part of their format)', () => {
    assert.deepEqual(fingerprint('acme', 'm1'), [-2028039637, 1242142939]);
    assert.deepEqual(fingerprint('demo', '3f2a-ü'), [738849233, 1291678341]);
    assert.deepEqual(fingerprint('', ''), [-1843634889, 660639402]);
    assert.notDeepEqual(fingerprint('acme', 'm1'), fingerprint('acmem', '1'), 'the tenant and the id are kept apart');
  });
});

describe('the dedup index', () => {
  it('knows every id of the window, per tenant, through growth, expiry and release', async () => {
    const { DedupIndex } = await import('../src/ingest/dedup.js');
    const { ManualClock } = await import('../src/lib/clock.js');
    const clock = new ManualClock(Date.parse('2026-03-15T00:00:00Z'));
    const index = new DedupIndex(3600_000, clock);
    const reserve = (tn: string, id: string, ticket: number) => index.reserve(...fingerprint(tn, id), clock.now(), ticket);
    const n = 200_000;
    for (let i = 0; i < n; i++) assert.equal(reserve('acme', `id-${i}`, 1 + (i >> 4)), -1);
    for (let i = 0; i < n; i += 997) assert.equal(reserve('acme', `id-${i}`, n), 1 + (i >> 4), `id-${i} is a duplicate, of the request that took it`);
    assert.equal(reserve('other', 'id-5', n), -1, 'the same id for another tenant is new');
    index.release(...fingerprint('acme', 'id-7'));
    assert.equal(reserve('acme', 'id-7', n + 1), -1, 'a released id is accepted again');
    index.load(...fingerprint('acme', 'loaded'), clock.now());
    assert.equal(reserve('acme', 'loaded', n + 2), 0, 'an id loaded at start was logged by no request of this run');
    clock.advance(3600_000 + 1);
    assert.equal(reserve('acme', 'id-9', n + 3), -1, 'an id outside the window is new again');
    assert.equal(reserve('acme', 'id-9', n + 4), n + 3);
    clock.advance(10_000); // past the slice of time (4 s for an hour's window) the first ids were counted in
    index.maintain();
    assert.equal(index.ids, 1, 'one id in the window: the expired ones are no longer counted');
  });
});

describe('the dedup id files', () => {
  it('are written for a segment of 300 000 messages (no argument-spreading limits)', async () => {
    const { writeIdsFile, readIdsFiles } = await import('../src/ingest/dedup.js');
    const dir = tempDir('ids');
    const entries = Buffer.alloc(300_000 * 16);
    for (let i = 0; i < 300_000; i++) {
      const [hi, lo] = fingerprint('t', `m${i}`);
      entries.writeInt32LE(hi, 16 * i);
      entries.writeInt32LE(lo, 16 * i + 4);
      entries.writeDoubleLE(1_000 + i, 16 * i + 8);
    }
    await writeIdsFile(dir, 1, entries, 300_999);
    const back: Array<[number, number, number]> = [];
    await readIdsFiles(dir, 0, (hi, lo, at) => back.push([hi, lo, at]));
    assert.equal(back.length, 300_000);
    assert.deepEqual(back[299_999], [...fingerprint('t', 'm299999'), 300_999]);
    await readIdsFiles(dir, 300_999, () => assert.fail('a file older than the cutoff is not read'));
    assert.deepEqual(await fs.readdir(dir), [], 'and is deleted');
  });
  it('of earlier versions (one JSON line per id) are still read', async () => {
    const { readIdsFiles } = await import('../src/ingest/dedup.js');
    const dir = tempDir('ids');
    await fs.writeFile(path.join(dir, 'ids-000000000003-2000.jsonl'), '["acme","m1",1000]\n["acme","m\\"2",2000]\n');
    const back: Array<[number, number, number]> = [];
    await readIdsFiles(dir, 0, (hi, lo, at) => back.push([hi, lo, at]));
    assert.deepEqual(back, [[...fingerprint('acme', 'm1'), 1000], [...fingerprint('acme', 'm"2'), 2000]]);
  });
});
