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
});
