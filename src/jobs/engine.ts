/**
 * The DuckDB engine the jobs run their SQL on. One in-memory database per job run, with TimeZone set to
 * UTC so no day boundary ever depends on the machine. SQL lives in src/jobs/sql/*.sql; values reach it as
 * escaped literals through `sqlString`/`sqlList`, never by pasting raw input.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

/** Output writers at once; more than the cores only adds contention. */
const WRITERS = 3;
/** Memory one writer's query may need (a sort or join with its read buffers) before another may run beside it. */
const MEMORY_PER_WRITER = 512 * 2 ** 20;
const MEMORY_PER_THREAD = 256 * 2 ** 20;

const SQL_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sql');

/** A SQL file of a folder with {{name}} slots filled by already-escaped fragments. */
export function sqlIn(dir: string, name: string, slots: Record<string, string> = {}): string {
  const text = readFileSync(path.join(dir, `${name}.sql`), 'utf8');
  return text.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in slots)) throw new Error(`${name}.sql: no value for {{${k}}}`);
    return slots[k]!;
  });
}

/** A job's SQL file (src/jobs/sql). */
export const sql = (name: string, slots: Record<string, string> = {}) => sqlIn(SQL_DIR, name, slots);

export const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;
export const sqlList = (xs: readonly string[]) => `[${xs.map(sqlString).join(', ')}]`;

/**
 * TimeZone = UTC. Setting it needs DuckDB's ICU extension, which is downloaded at run time and so cannot be
 * relied on. Without ICU, DuckDB has no time-zone arithmetic at all: every TIMESTAMPTZ operation is UTC
 * whatever the setting says. tracklake's SQL works on epoch-millisecond BIGINTs with UTC day bounds
 * computed in TypeScript, so either way no result depends on the machine's zone.
 */
async function pinUtc(conn: DuckDBConnection): Promise<void> {
  try {
    await conn.run("SET TimeZone = 'UTC'");
  } catch {
    // No ICU: already UTC in effect (see above).
  }
}

/**
 * Up to `max` connections of one DuckDB instance, shared by callers: an idle one, else a new one, else the
 * next one released. The job engine writes outputs through one; the read cache answers queries through one.
 */
export class ConnectionPool {
  private readonly all: DuckDBConnection[] = [];
  private readonly idle: DuckDBConnection[] = [];
  private readonly waiting: Array<(c: DuckDBConnection) => void> = [];

  constructor(private readonly instance: DuckDBInstance, private readonly max: number, private readonly setup: (c: DuckDBConnection) => Promise<void> = async () => undefined) {}

  async use<T>(body: (c: DuckDBConnection) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    try {
      return await body(conn);
    } finally {
      const next = this.waiting.shift();
      if (next) next(conn);
      else this.idle.push(conn);
    }
  }

  private async acquire(): Promise<DuckDBConnection> {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.all.length < this.max) {
      const conn = await this.instance.connect();
      this.all.push(conn);
      await this.setup(conn);
      return conn;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  close(): void {
    for (const c of this.all) c.closeSync();
  }
}

export class Engine {
  /**
   * Connections for writing outputs, so several small COPYs run at once (each is mostly one thread).
   * Writers see the job's tables (which are therefore never TEMP: temporary tables belong to one connection).
   */
  private readonly writers: ConnectionPool;

  private constructor(private readonly instance: DuckDBInstance, private readonly conn: DuckDBConnection, maxWriters: number) {
    this.writers = new ConnectionPool(instance, maxWriters, pinUtc);
  }

  static async open(opts: { threads?: number; tempDir?: string; memoryLimitBytes?: number } = {}): Promise<Engine> {
    const config: Record<string, string> = { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' };
    // Each thread reading CSV holds 32 MiB buffers besides its share of a sort or join: within a small
    // memory limit, fewer threads is what lets a query fit (DuckDB's own first advice).
    const threads = opts.memoryLimitBytes ? Math.min(opts.threads ?? os.availableParallelism(), Math.max(1, Math.floor(opts.memoryLimitBytes / MEMORY_PER_THREAD))) : opts.threads;
    if (threads) config.threads = String(threads);
    if (opts.tempDir) config.temp_directory = opts.tempDir;
    if (opts.memoryLimitBytes) config.memory_limit = `${Math.max(1, Math.floor(opts.memoryLimitBytes / 2 ** 20))}MiB`;
    const instance = await DuckDBInstance.create(':memory:', config);
    const conn = await instance.connect();
    await pinUtc(conn);
    await conn.run(sql('macros'));
    // Within a small memory limit, writers take turns: three sorts side by side would not fit where one does.
    const writers = opts.memoryLimitBytes ? Math.max(1, Math.min(WRITERS, Math.floor(opts.memoryLimitBytes / MEMORY_PER_WRITER))) : WRITERS;
    return new Engine(instance, conn, writers);
  }

  async run(statement: string): Promise<void> {
    await this.conn.run(statement);
  }

  /** Rows as plain objects; BIGINTs come back as bigint. */
  async all<T = Record<string, unknown>>(statement: string): Promise<T[]> {
    const reader = await this.conn.runAndReadAll(statement);
    return reader.getRowObjects() as T[];
  }

  /**
   * Writes a query's result as a CSV file by DuckDB's own writer (RFC 4180, '\n', a header line): far cheaper
   * than materialising large results in JavaScript. Empty strings must be NULL in the query, so they are
   * written as empty fields rather than "".
   */
  async copyToCsv(select: string, file: string, opts: { header?: boolean } = {}): Promise<void> {
    await this.writers.use((conn) => conn.run(`COPY (${select}) TO ${sqlString(file)} (FORMAT csv, HEADER ${opts.header ?? true}, DELIMITER ',', QUOTE '"', ESCAPE '"')`));
  }

  /**
   * Runs `body` with DuckDB on one thread fewer (at least one), then restores the setting. For a phase whose
   * bottleneck is elsewhere: a disk-bound copy in this thread needs a core for itself and for the kernel's
   * writeback, and loses more to contention than DuckDB gains from the extra thread.
   */
  async withCoreToSpare<T>(body: () => Promise<T>): Promise<T> {
    const [row] = await this.all<{ threads: bigint }>("SELECT current_setting('threads')::BIGINT AS threads");
    const threads = Number(row!.threads);
    await this.run(`SET threads = ${Math.max(1, threads - 1)}`);
    try {
      return await body();
    } finally {
      await this.run(`SET threads = ${threads}`);
    }
  }

  close(): void {
    this.writers.close();
    this.conn.closeSync();
    this.instance.closeSync();
  }
}
