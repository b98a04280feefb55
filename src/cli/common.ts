/** What every subcommand shares: turning its flags into the one Config, and the logger. */
import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from '../config/config.js';
import { ConfigError, ScratchFullError, StorageError } from '../lib/errors.js';

/** commander's option values → config settings (only the ones the user gave). */
export function configFromOptions(opts: Record<string, unknown>, env: NodeJS.ProcessEnv): Config {
  const { config, ...flags } = opts;
  // commander sets negatable flags (--no-scheduler) to true when absent; only an explicit "no" is a setting.
  if (flags.scheduler === true) delete flags.scheduler;
  if (flags.api === true) delete flags.api;
  return loadConfig({ flags, env, configFile: typeof config === 'string' ? config : undefined });
}

export function makeLogger(level: Config['logLevel']): Logger {
  return pino({ level, base: { pid: process.pid }, redact: ['req.headers.authorization', 'writeKey'] });
}

/**
 * Runs a command body. A ConfigError exits 2 with its message, a StorageError (the storage failed) 1 with
 * its message; anything else is a bug and prints its stack.
 */
export async function run(body: () => Promise<number | void>): Promise<void> {
  try {
    const code = await body();
    if (typeof code === 'number') process.exitCode = code;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`tracklake: ${e.message}\n`);
      process.exit(2);
    }
    if (e instanceof StorageError || e instanceof ScratchFullError) {
      process.stderr.write(`tracklake: ${e.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`tracklake: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  }
}

/**
 * A flag's whole number within [min, max]. commander calls this while it parses, before any action's run():
 * main.ts runs the parse itself through run(), so the error is a message and exit code 2, not a stack.
 */
export const intArg = (name: string, min = 0, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new ConfigError(name, `"${v}" is not a whole number`);
  if (n < min || n > max) throw new ConfigError(name, max === Number.MAX_SAFE_INTEGER ? `must be at least ${min}, not ${v}` : `must be between ${min} and ${max}, not ${v}`);
  return n;
};

/** A flag's share: a number from 0 to 1. */
export const shareArg = (name: string) => (v: string) => {
  const n = /^\s*(0|1|0?\.\d+|1\.0*)\s*$/.test(v) ? Number(v) : NaN;
  if (!(n >= 0 && n <= 1)) throw new ConfigError(name, `"${v}" is not a share from 0 to 1, such as 0.1`);
  return n;
};

/** A --tenant flag's value, checked against the tenants the configuration's sources send to. */
export function configuredTenant(config: Config, tenant: string | undefined): string {
  const tenants = new Set(Object.values(config.sources));
  if (tenant === undefined || !tenants.has(tenant)) throw new ConfigError('tenant', `${tenant === undefined ? 'give --tenant' : `"${tenant}" is no tenant of this configuration`} (${[...tenants].join(', ')})`);
  return tenant;
}

/** Prints what a job run skipped (malformed rows, files without the expected header) on stderr. */
export function printSkipped(report: { badRows: Array<{ key: string; line: number; error: string }>; skippedFiles: Array<{ key: string; reason: string }> }, prefix = ''): void {
  for (const b of report.badRows) process.stderr.write(`${prefix}skipped malformed row ${b.key}:${b.line}: ${b.error}\n`);
  for (const f of report.skippedFiles) process.stderr.write(`${prefix}skipped file ${f.key}: ${f.reason}\n`);
}
