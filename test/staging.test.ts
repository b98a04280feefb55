import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Stager } from '../src/jobs/staging.js';
import { LocalStore } from '../src/storage/local.js';
import { storeOver, tempDir } from './helpers.js';

describe('staging', () => {
  it('downloads from a store without local files into one scratch folder, and removes it all', async () => {
    const local = new LocalStore(path.join(tempDir('stage'), 'data'));
    // A store that, like S3, has no local paths: every object is downloaded.
    const remote = storeOver(local, { location: 'remote' });
    for (let i = 0; i < 20; i++) await remote.put(`tracks/2026/03/15/n-${i}.csv`, `h\n${i}\n`);
    const scratchRoot = tempDir('scratch');
    const stager = new Stager(remote, scratchRoot);
    const staged = await stager.objects(await remote.list('tracks/'), 'h');
    assert.equal(staged.files.length, 20);
    assert.equal(readdirSync(scratchRoot).length, 1, 'twenty downloads at once share one folder');
    await stager.concat(staged.files.map((f) => f.file), 'h');
    await stager.cleanup();
    assert.deepEqual(readdirSync(scratchRoot), []);
  });

  it('stage a day of three nodes\' minute files, skipping only a wrong header or a file gone since the listing', async () => {
    const store = new LocalStore(path.join(tempDir('stage-day'), 'data'));
    const keys = Array.from({ length: 3 * 1440 }, (_, i) => `tracks/2026/03/15/n${i % 3}-${String(i).padStart(12, '0')}.csv`);
    for (const key of keys) await store.put(key, 'h\n1\n');
    await store.put('tracks/2026/03/15/other.csv', 'not the header\n1\n');
    const listed = await store.list('tracks/');
    await store.delete(keys[7]!); // an erasure or an operator, between the listing and the job's read
    const stager = new Stager(store, tempDir('scratch-day'));
    const staged = await stager.objects(listed, 'h');
    assert.equal(staged.files.length, keys.length - 1);
    assert.deepEqual(staged.skipped.map((x) => [x.key, x.reason.slice(0, 13)]).sort(), [[keys[7], 'gone since it'], ['tracks/2026/03/15/other.csv', 'header is not']]);
    await stager.cleanup();
  });
});
