import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WriteAheadLog, decodeSegment, encodeRecords } from '../src/ingest/wal.js';
import { tempDir } from './helpers.js';

describe('the write-ahead log', () => {
  it('recovers every complete record and cuts a torn tail', async () => {
    const dir = tempDir('wal');
    const wal = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20, nodeId: 'n1' });
    await wal.append([{ id: 'a' }, { id: 'b' }]);
    await wal.append([{ id: 'c' }]);
    // Simulate a crash in the middle of writing the next record: half a line, no newline.
    const seg = path.join(dir, 'seg-000000000001.log');
    await fs.appendFile(seg, encodeRecords([{ id: 'torn' }]).slice(0, 12));
    await fs.rm(path.join(dir, 'LOCK'));
    const again = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20 });
    assert.equal(again.nodeId, 'n1');
    assert.deepEqual(again.sealed(), [1]);
    assert.deepEqual(await again.read(1), [{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    assert.equal((await fs.readFile(seg)).length, Buffer.byteLength(encodeRecords([{ id: 'a' }, { id: 'b' }]) + encodeRecords([{ id: 'c' }])));
    await again.close();
  });

  it('rejects a record whose checksum does not match', () => {
    const good = encodeRecords([{ id: 'x' }]);
    const bad = good.replace('"x"', '"y"');
    assert.equal(decodeSegment(Buffer.from(good + bad)).records.length, 1);
  });

  it('commits concurrent appends together and never reuses a segment number', async () => {
    const dir = tempDir('wal');
    const wal = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20 });
    await Promise.all(Array.from({ length: 200 }, (_, i) => wal.append([{ i }])));
    await wal.seal();
    await wal.append([{ i: 'next' }]);
    await wal.seal();
    assert.deepEqual(wal.sealed(), [1, 2]);
    assert.equal((await wal.read(1)).length, 200);
    await wal.release(1);
    await wal.release(2);
    await wal.close();
    const again = await WriteAheadLog.open(dir, { maxSegmentBytes: 1 << 20 });
    await again.append([{ i: 'after restart' }]);
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
