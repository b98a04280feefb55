/**
 * ObjectStore: the one interface every stage reads and writes files through, so each job runs unchanged on a
 * local folder or an S3 bucket. Keys are '/'-separated relative paths such as 'tracks/2026/11/22/x.csv'.
 * A put is atomic: a reader sees the old object or the new one, never half of one.
 */
import { StorageError } from '../lib/errors.js';

export interface ObjectInfo {
  key: string;
  size: number;
  /** A content fingerprint that changes when the object does (S3's ETag; a local hash of size and mtime). */
  etag: string;
}

export interface ObjectStore {
  /** A human name for logs: the folder or the s3:// URL. */
  readonly location: string;
  put(key: string, body: Buffer | string): Promise<void>;
  /** Stores a local file's content at key, streaming (job outputs can be gigabytes). The file may be consumed. */
  putFile(key: string, file: string): Promise<void>;
  /** The object's bytes, or undefined when there is none. */
  get(key: string): Promise<Buffer | undefined>;
  /** Every object whose key starts with prefix, in key order. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Where the object already lies as a local file, its path: jobs then read it in place instead of staging
   * a copy. Stores without local files (S3) leave this out.
   */
  localPath?(key: string): string;
}

/**
 * The store with every failure as a StorageError that names it, the operation and the key: an operator
 * reading "connect ECONNREFUSED" or "AccessDenied" learns which bucket and which object. openStore returns
 * stores wrapped this way.
 */
export function withErrorContext(store: ObjectStore): ObjectStore {
  const guard = async <T>(operation: string, key: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw e instanceof StorageError ? e : new StorageError(store.location, operation, key, e);
    }
  };
  const wrapped: ObjectStore = {
    location: store.location,
    put: (key, body) => guard('put', key, () => store.put(key, body)),
    putFile: (key, file) => guard('put', key, () => store.putFile(key, file)),
    get: (key) => guard('get', key, () => store.get(key)),
    list: (prefix) => guard('list', prefix === '' ? '(all)' : prefix, () => store.list(prefix)),
    delete: (key) => guard('delete', key, () => store.delete(key)),
  };
  if (store.localPath) wrapped.localPath = (key) => store.localPath!(key);
  return wrapped;
}

const KEY_RE = /^[A-Za-z0-9._=-]+(\/[A-Za-z0-9._=-]+)*$/;

/** Keys are built by tracklake, never by clients; this catches a bug before it writes outside the root. */
export function assertKey(key: string): void {
  if (!KEY_RE.test(key) || key.split('/').some((p) => p === '.' || p === '..')) {
    throw new Error(`invalid object key: ${JSON.stringify(key)}`);
  }
}
