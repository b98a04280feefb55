/**
 * A node's state folder (`--state-dir`, default ./.tracklake): everything a node keeps on its own disk. Its
 * log (`<state>/wal` unless `--wal-dir` puts it elsewhere; the node's id is in the log's meta.json), the read
 * side's token secret and its cache. One long-running process (`serve` or `api`) per folder: a second one is
 * refused by name, so two nodes given sibling folders never share a cache or a secret, and a log folder in a
 * shared temporary folder no longer puts the secret there.
 *
 * Before the state folder, the secret and the cache lay beside the log (`<walDir>/..`). A node whose log was
 * configured elsewhere finds its secret there: it is copied into the state folder once (tokens already handed
 * out stay valid), and the log says so; the old cache is only named (the new one fills from storage).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { ConfigError } from '../lib/errors.js';
import { lockFolder, makeDir } from '../storage/local.js';

export interface StatePaths {
  dir: string;
  /** The read side's token secret, when `apiSecret` is not configured. */
  secret: string;
  readCache: string;
  /** Where the read cache computes the sessions of days not analysed yet. */
  readCacheSessions: string;
}

/** Something to tell the operator: what was carried over from the place versions before --state-dir used. */
type Note = (message: string, details: Record<string, string>) => void;

export function statePaths(config: Config): StatePaths {
  const dir = path.resolve(config.stateDir);
  return { dir, secret: path.join(dir, 'api-secret'), readCache: path.join(dir, 'read-cache.duckdb'), readCacheSessions: path.join(dir, 'read-cache-sessions') };
}

/**
 * Makes the state folder if needed and carries the secret over from the old place. With `hold`, also takes
 * the folder for this process (the long-running commands): refused while another process holds it.
 */
export async function openState(config: Config, note: Note, hold?: 'serve' | 'api'): Promise<StatePaths> {
  const paths = statePaths(config);
  await makeDir(paths.dir).catch((e: NodeJS.ErrnoException) => {
    throw new ConfigError('stateDir', `cannot make the state folder ${paths.dir} (${e.code ?? e.message})`);
  });
  if (hold) {
    await lockFolder(paths.dir, 'stateDir', (pid) => `the state folder ${paths.dir} is in use by process ${pid}; give each tracklake ${hold === 'api' ? 'read node' : 'node'} its own --state-dir`);
  }
  await adoptOldState(config, paths, note);
  return paths;
}

async function adoptOldState(config: Config, paths: StatePaths, note: Note): Promise<void> {
  const old = path.dirname(path.resolve(config.walDir));
  if (old === paths.dir) return; // the default layout: the old place is the state folder
  const oldSecret = path.join(old, 'api-secret');
  if (config.apiSecret === undefined && !(await exists(paths.secret)) && (await exists(oldSecret))) {
    // Copied, not moved: a node still on the old version may share that folder.
    await fs.copyFile(oldSecret, paths.secret, fs.constants.COPYFILE_EXCL).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw new ConfigError('stateDir', `cannot copy the API secret from ${oldSecret} to ${paths.secret}: ${e.message}`);
    });
    await fs.chmod(paths.secret, 0o600);
    note('the API secret was found beside the log, where versions before --state-dir kept it; copied into the state folder (tokens stay valid)', { from: oldSecret, to: paths.secret });
  }
  const oldCache = path.join(old, 'read-cache.duckdb');
  if (await exists(oldCache)) note('a read cache beside the log is no longer used (the read cache is in the state folder, filled from storage); it can be removed', { file: oldCache });
}

const exists = (file: string) => fs.access(file).then(() => true, () => false);
