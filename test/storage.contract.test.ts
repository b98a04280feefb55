/** One contract, every ObjectStore: the same suite runs against the local folder and against S3 (s3rver). */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { StorageError } from '../src/lib/errors.js';
import { LocalStore } from '../src/storage/local.js';
import { overlayStore } from '../src/storage/overlay.js';
import { S3Store } from '../src/storage/s3.js';
import { withErrorContext, type ObjectStore } from '../src/storage/store.js';
import { tempDir } from './helpers.js';
import { TestS3 } from './s3server.js';

/**
 * open gives a working store; broken one of the same kind whose storage cannot be reached or written, to
 * show that openStore's wrapping (withErrorContext) names the store, the operation and the key.
 */
function contract(name: string, open: () => Promise<{ store: ObjectStore; close: () => Promise<void> }>, broken: () => Promise<ObjectStore>) {
  describe(`ObjectStore contract: ${name}`, () => {
    let store: ObjectStore;
    let close: () => Promise<void>;
    before(async () => ({ store, close } = await open()));
    after(() => close());

    it('returns what was put, bytes for bytes, and undefined for a missing key', async () => {
      const bytes = Buffer.from([0, 1, 2, 255, 0x0a, 0xc3, 0xa9]);
      await store.put('a/b/bin.dat', bytes);
      await store.put('a/b/text.csv', 'time,é\n1,"x,y"\n');
      assert.deepEqual(await store.get('a/b/bin.dat'), bytes);
      assert.equal((await store.get('a/b/text.csv'))!.toString('utf8'), 'time,é\n1,"x,y"\n');
      assert.equal(await store.get('a/b/missing.csv'), undefined);
    });

    it('overwrites a key whole', async () => {
      await store.put('over/x.csv', 'first version, longer\n');
      await store.put('over/x.csv', 'second\n');
      assert.equal((await store.get('over/x.csv'))!.toString(), 'second\n');
    });

    it('lists keys under a prefix in key order, with sizes and an etag that changes with the content', async () => {
      await store.put('tracks/2026/01/02/n-2.csv', 'bb');
      await store.put('tracks/2026/01/02/n-1.csv', 'a');
      await store.put('tracks/2026/01/03/n-1.csv', 'ccc');
      await store.put('tracks/2026/01/020/odd.csv', 'x');
      const listed = await store.list('tracks/2026/01/02/');
      assert.deepEqual(listed.map((o) => [o.key, o.size]), [['tracks/2026/01/02/n-1.csv', 1], ['tracks/2026/01/02/n-2.csv', 2]]);
      const before = listed[0]!.etag;
      await new Promise((r) => setTimeout(r, 20));
      await store.put('tracks/2026/01/02/n-1.csv', 'z');
      const after = (await store.list('tracks/2026/01/02/n-1'))[0]!;
      assert.notEqual(after.etag, before);
      assert.deepEqual((await store.list('tracks/2026/01/')).map((o) => o.key), ['tracks/2026/01/02/n-1.csv', 'tracks/2026/01/02/n-2.csv', 'tracks/2026/01/020/odd.csv', 'tracks/2026/01/03/n-1.csv']);
      assert.deepEqual(await store.list('nothing/here/'), []);
    });

    it('lists past 1000 keys (S3 pages its listings)', async () => {
      // 50 at a time: s3rver (the test server, not the code under test) fails under a thousand parallel writes.
      for (let i = 0; i < 1010; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, 1010 - i) }, (_, j) => store.put(`many/k-${String(i + j).padStart(5, '0')}.csv`, 'x')));
      }
      const keys = (await store.list('many/')).map((o) => o.key);
      assert.equal(keys.length, 1010);
      assert.equal(keys[1009], 'many/k-01009.csv');
    });

    it('deletes, and deleting a missing key is not an error', async () => {
      await store.put('del/x.csv', 'x');
      await store.delete('del/x.csv');
      await store.delete('del/never.csv');
      assert.equal(await store.get('del/x.csv'), undefined);
      assert.deepEqual(await store.list('del/'), []);
    });

    it('stores a large object (multipart on S3)', async () => {
      const big = Buffer.alloc(20 * 1024 * 1024, 'abcdefghij');
      await store.put('big/object.csv', big);
      assert.ok((await store.get('big/object.csv'))!.equals(big));
      assert.equal((await store.list('big/'))[0]!.size, big.length);
    });

    it('refuses keys that could escape the root', async () => {
      await assert.rejects(store.put('../escape.csv', 'x'), /invalid object key/);
      await assert.rejects(store.put('/abs.csv', 'x'), /invalid object key/);
      await assert.rejects(store.put('a//b.csv', 'x'), /invalid object key/);
    });

    it('fails with a StorageError naming the store, the operation and the key, the cause kept', async () => {
      const failing = withErrorContext(await broken());
      for (const [op, run] of [['put', () => failing.put('fail/x.csv', 'x')], ['get', () => failing.get('fail/x.csv')]] as const) {
        await assert.rejects(run(), (e: Error) => {
          assert.ok(e instanceof StorageError, String(e));
          assert.ok(e.message.startsWith(`storage ${failing.location}: ${op} fail/x.csv failed: `), e.message);
          assert.ok(e.cause instanceof Error);
          return true;
        });
      }
    });
  });
}

contract(
  'local folder',
  async () => ({ store: new LocalStore(path.join(tempDir('store'), 'root')), close: async () => {} }),
  async () => {
    const file = path.join(tempDir('store'), 'a-file');
    await fs.writeFile(file, '');
    return new LocalStore(path.join(file, 'root')); // under a file: nothing can be made or read there
  },
);
contract(
  'S3 (s3rver on loopback)',
  async () => {
    const s3 = await TestS3.start();
    return { store: s3.store('some/prefix'), close: () => s3.down() };
  },
  async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    return new S3Store({ bucket: 'nowhere', prefix: '', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  },
);
contract(
  'overlay (a folder over a local folder)',
  async () => ({ store: overlayStore(new LocalStore(path.join(tempDir('base'), 'root')), new LocalStore(path.join(tempDir('top'), 'root'))), close: async () => {} }),
  async () => {
    const file = path.join(tempDir('store'), 'a-file');
    await fs.writeFile(file, '');
    return overlayStore(new LocalStore(path.join(file, 'base')), new LocalStore(path.join(file, 'top')));
  },
);

describe('the overlay store', () => {
  it('reads through to the base, the folder winning, and writes only to the folder', async () => {
    const base = new LocalStore(path.join(tempDir('base'), 'root'));
    const top = new LocalStore(path.join(tempDir('top'), 'root'));
    await base.put('d/a.csv', 'base a\n');
    await base.put('d/b.csv', 'base b\n');
    const store = overlayStore(base, top);
    await store.put('d/b.csv', 'top b\n');
    await store.put('d/c.csv', 'top c\n');
    assert.equal((await store.get('d/a.csv'))!.toString(), 'base a\n');
    assert.equal((await store.get('d/b.csv'))!.toString(), 'top b\n');
    assert.deepEqual((await store.list('d/')).map((o) => o.key), ['d/a.csv', 'd/b.csv', 'd/c.csv']);
    assert.equal((await base.get('d/b.csv'))!.toString(), 'base b\n', 'the base is untouched');
    assert.equal(await base.get('d/c.csv'), undefined);
    assert.equal(store.localPath!('d/a.csv'), base.localPath('d/a.csv'));
    assert.equal(store.localPath!('d/b.csv'), top.localPath('d/b.csv'));
  });
});
