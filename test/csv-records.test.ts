import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { open } from 'node:fs/promises';
import { CsvRecordReader, drainedSource } from '../src/lib/csv-records.js';
import { tempDir } from './helpers.js';

/** Every record of the file as [offset, text], read with the given chunk size. */
async function records(file: string, chunk: number): Promise<Array<[number, string]>> {
  const r = await CsvRecordReader.open(file, chunk);
  const out: Array<[number, string]> = [];
  while (r.next() || (await r.more())) out.push([r.offset, r.buf.toString('utf8', r.start, r.end)]);
  await r.close();
  return out;
}

/** A deterministic random CSV record: plain, quoted with commas, escaped quotes, newlines and non-ASCII, or empty. */
function record(rnd: () => number): string {
  const fields = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => {
    const kind = Math.floor(rnd() * 5);
    if (kind === 0) return 'plain';
    if (kind === 1) return '"a, b"';
    if (kind === 2) return '"say ""hi"""';
    if (kind === 3) return '"two\nlines ü €"';
    return '';
  });
  return rnd() < 0.05 ? '' : fields.join(',');
}

describe('CSV record reader', () => {
  it('splits records at newlines outside quotes, with their byte offsets, across any chunk boundary', async () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const recs = [...Array.from({ length: 300 }, () => record(rnd)), 'end'];
    const dir = tempDir('csv-records');
    for (const trailingNewline of [true, false]) {
      const text = recs.join('\n') + (trailingNewline ? '\n' : '');
      const file = path.join(dir, `f${trailingNewline}.csv`);
      writeFileSync(file, text);
      const expected: Array<[number, string]> = [];
      let offset = 0;
      for (const r of recs) {
        expected.push([offset, r]);
        offset += Buffer.byteLength(r) + 1;
      }
      for (const chunk of [1, 3, 16, 1 << 20]) assert.deepEqual(await records(file, chunk), expected, `chunk ${chunk}, trailing newline ${trailingNewline}`);
    }
  });

  it('notices carriage returns and reads an empty file as no records', async () => {
    const dir = tempDir('csv-records');
    writeFileSync(path.join(dir, 'crlf.csv'), 'a,b\r\n1,2\r\n');
    const r = await CsvRecordReader.open(path.join(dir, 'crlf.csv'));
    while (r.next() || (await r.more()));
    assert.equal(r.sawCr, true);
    await r.close();
    writeFileSync(path.join(dir, 'empty.csv'), '');
    assert.deepEqual(await records(path.join(dir, 'empty.csv'), 8), []);
  });

  it('reads a source ahead within its bound and gives every byte in order', async () => {
    const dir = tempDir('csv-records');
    const file = path.join(dir, 'big.csv');
    const lines = Array.from({ length: 20_000 }, (_, i) => `row ${i},"x, ${i}"`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    // Held at most ~1 KB ahead: the reading pauses and resumes many times.
    const reader = new CsvRecordReader(drainedSource(await open(file, 'r'), 1024), 4096);
    const got: string[] = [];
    while (reader.next() || (await reader.more())) got.push(reader.buf.toString('utf8', reader.start, reader.end));
    await reader.close();
    assert.deepEqual(got, lines);
    // Closed early, it still reads its input to the end (a pipe's writer can finish) and returns.
    const early = new CsvRecordReader(drainedSource(await open(file, 'r'), 1024), 4096);
    assert.ok(early.next() || (await early.more()));
    await early.close();
  });
});
