/**
 * A store that reads through a local folder to another store and writes only to the folder: a job can run
 * over a bucket's files without writing to the bucket. The read side uses it to compute the newest days'
 * sessions with the sessions job itself, into its own state folder.
 */
import { existsSync } from 'node:fs';
import type { LocalStore } from './local.js';
import type { ObjectInfo, ObjectStore } from './store.js';

export function overlayStore(base: ObjectStore, top: LocalStore): ObjectStore {
  const store: ObjectStore = {
    location: `${top.location} over ${base.location}`,
    put: (key, body) => top.put(key, body),
    putFile: (key, file) => top.putFile(key, file),
    async get(key) {
      return (await top.get(key)) ?? base.get(key);
    },
    async list(prefix) {
      const merged = new Map<string, ObjectInfo>();
      for (const o of await base.list(prefix)) merged.set(o.key, o);
      for (const o of await top.list(prefix)) merged.set(o.key, o);
      return [...merged.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },
    delete: (key) => top.delete(key),
  };
  // Jobs read local files in place; a key is the folder's when written there, else the base's.
  if (base.localPath) store.localPath = (key) => (existsSync(top.localPath(key)) ? top.localPath(key) : base.localPath!(key));
  return store;
}
