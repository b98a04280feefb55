/** `tracklake warehouse ddl`: the bucket's files as the tables of another engine (lake/ddl.ts). */
import path from 'node:path';
import type { Config } from '../config/config.js';
import { s3Settings } from '../config/config.js';
import { ConfigError } from '../lib/errors.js';
import { ddl, ENGINES, EXPOSED, isTableFile, type Engine } from '../lake/ddl.js';
import { openStore } from '../storage/open.js';

export async function warehouseDdl(config: Config, engine: string): Promise<string> {
  if (!(ENGINES as readonly string[]).includes(engine)) throw new ConfigError('engine', `"${engine}" is not an engine: ${ENGINES.join(', ')}`);
  // A bucket as it is given; a local folder as an absolute path (the engine may run elsewhere than here).
  const remote = /^[a-z][a-z0-9+.-]*:\/\//.test(config.storage);
  const location = remote ? config.storage : path.resolve(config.storage);
  if (engine !== 'duckdb') return ddl(engine as Engine, location);
  // DuckDB binds a view's files when it is made: only the tables that have files yet get one.
  const store = await openStore(config.storage, s3Settings(config));
  const present = new Set<string>();
  for (const e of EXPOSED) if ((await store.list(`${e.folder}/`)).some((o) => isTableFile(e, o.key))) present.add(e.table);
  return ddl('duckdb', location, present);
}
