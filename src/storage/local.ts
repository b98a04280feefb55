/** The embedded default ObjectStore: a folder. Writes go to a temp file, are fsynced, then renamed into place. */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../lib/errors.js';
import { assertKey, type ObjectInfo, type ObjectStore } from './store.js';

const TMP_PREFIX = '.tmp-';

export class LocalStore implements ObjectStore {
  readonly location: string;
  constructor(readonly root: string) {
    this.location = path.resolve(root);
  }

  private file(key: string): string {
    assertKey(key);
    return path.join(this.location, ...key.split('/'));
  }

  localPath(key: string): string {
    return this.file(key);
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    await writeFileAtomic(this.file(key), body);
  }

  async putFile(key: string, file: string): Promise<void> {
    await install(this.file(key), async (tmp) => {
      // A rename when the file is on the same file system (no copy), else a copy.
      await fs.rename(file, tmp).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EXDEV') throw e;
        await fs.copyFile(file, tmp);
      });
      const fh = await fs.open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await fs.readFile(this.file(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // Walk only the folder the prefix names, then filter by the rest of it.
    const slash = prefix.lastIndexOf('/');
    const base = slash >= 0 ? prefix.slice(0, slash) : '';
    const out: ObjectInfo[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(path.join(this.location, rel), { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw e;
      }
      // Folders and stats in parallel: a month of aggregates is a few hundred small files.
      await Promise.all(
        entries.map(async (ent) => {
          if (ent.name.startsWith(TMP_PREFIX)) return;
          const key = rel === '' ? ent.name : `${rel}/${ent.name}`;
          if (ent.isDirectory()) {
            if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(key);
          } else if (ent.isFile() && key.startsWith(prefix)) {
            const st = await fs.stat(path.join(this.location, key));
            const etag = createHash('sha1').update(`${st.size}:${st.mtimeMs}:${st.ino}`).digest('hex').slice(0, 16);
            out.push({ key, size: st.size, etag });
          }
        }),
      );
    };
    await walk(base);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.file(key), { force: true });
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes body to file atomically and durably: a temp file beside it, fsynced, renamed into place, the
 * folder synced. Readers see the old content or the new, never half; after a crash, one of the two.
 */
export async function writeFileAtomic(file: string, body: Buffer | string): Promise<void> {
  await install(file, async (tmp) => {
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

/**
 * `mkdir -p` that always ends. Node's recursive mkdir never returns where mkdir answers ENOENT for a folder
 * whose parent exists (under /proc, for one): here that second ENOENT is the error.
 */
export async function makeDir(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await fs.stat(dir)).isDirectory()) return;
    if (code !== 'ENOENT' || path.dirname(dir) === dir) throw e;
    await makeDir(path.dirname(dir));
    await fs.mkdir(dir).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again; // EEXIST: made meanwhile by a concurrent put
    });
  }
}

/**
 * Takes a folder for this process (a LOCK file holding its pid): refused, as `setting`, while another live
 * process holds it, with `inUse(pid)` as the reason. A lock left by a process that died is taken over.
 */
export async function lockFolder(dir: string, setting: string, inUse: (pid: number) => string): Promise<void> {
  const lock = path.join(dir, 'LOCK');
  try {
    const pid = Number(await fs.readFile(lock, 'utf8'));
    if (pid && pid !== process.pid && isAlive(pid)) throw new ConfigError(setting, inUse(pid));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await fs.writeFile(lock, String(process.pid));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Refuses, as `setting`, a folder tracklake could never write to: one that is a file, or under one, or
 * not accessible. A folder that does not exist yet is fine: it is made on first write.
 */
export async function checkFolder(setting: string, dir: string): Promise<void> {
  let isDir: boolean;
  try {
    isDir = (await fs.stat(dir)).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new ConfigError(setting, `cannot use ${dir} (${code})`);
  }
  if (!isDir) throw new ConfigError(setting, `${dir} is a file, not a folder`);
}

/** Writes via `fill` to a temp file beside the target, then renames it into place: readers never see half. */
async function install(target: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const dir = path.dirname(target);
  await makeDir(dir);
  const tmp = path.join(dir, `${TMP_PREFIX}${randomBytes(6).toString('hex')}`);
  try {
    await fill(tmp);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  try {
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dir);
}
