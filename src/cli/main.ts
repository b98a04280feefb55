#!/usr/bin/env node
/** The tracklake command line: one program, a subcommand per job. */
import { Command, CommanderError, Option } from 'commander';
import type { Logger } from 'pino';
import { aggregateCommand, type DaySelection } from './aggregate.js';
import { apiCommand } from './api.js';
import { ConfigError } from '../lib/errors.js';
import { plansArg } from '../config/config.js';
import { LIMITS } from '../segment/message.js';
import { configFromOptions, intArg, makeLogger, run, shareArg } from './common.js';
import { serve } from './serve.js';
import { funnelCommand, sessionsCommand } from './sessions.js';
import { simulate } from './simulate.js';
import { tokenCreate } from './token.js';
import { destinationsReplay, destinationsStatus, formatStatus } from './destinations.js';
import { warehouseDdl } from './warehouse.js';
import { regulateCommand, regulationsList, regulationsRun, regulationsShow, type RegulateOptions } from './regulations.js';
import { planCheck, planInfer, planLint, planReplay, planReport, planTypegen, type RangeOptions } from './plan.js';
import type { Config } from '../config/config.js';

// `tracklake funnel … | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// exitOverride: commander's own usage errors (an unknown option or command, a missing argument) are thrown
// instead of exiting 1, so they exit 2 as every other refused flag does; 1 means "found something" to
// `plan lint` and "failing" to `destinations status`, which a script must not confuse with a typo.
// Subcommands made after this call inherit it.
const program = new Command('tracklake').description('Segment-compatible event collection into your own bucket').showHelpAfterError().exitOverride();

program
  .command('serve')
  .description('run the collector (and the nightly jobs)')
  .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
  .option('--host <host>', 'address to listen on (default 127.0.0.1)')
  .option('--port <port>', 'port to listen on (default 8080; 0 picks a free one)')
  .option('--storage <where>', 'local folder or s3://bucket/prefix (default ./data)')
  .option('--state-dir <dir>', 'the node\'s own folder: its log, API secret and read cache (default ./.tracklake)')
  .option('--wal-dir <dir>', 'local write-ahead log folder (default <state-dir>/wal)')
  .option('--flush-interval-ms <ms>', 'longest time before logged events are written to storage (default 60000)')
  .option('--max-segment-bytes <n>', 'ship a log segment early at this size (default 64 MiB)')
  .option('--max-buffer-bytes <n>', 'answer 503 once this much is waiting for storage (default 1 GiB)')
  .option('--ingest-workers <n>', 'worker threads that parse and map requests (default: cores - 1; 0: none)')
  .option('--dedup-max-bytes <n>', 'memory budget of the duplicate index (default: a quarter of the machine\'s memory)')
  .option('--dedup-redis-url <url>', 'Redis or Valkey shared by the collectors on one bucket: exactly once across them, one nightly run (env TRACKLAKE_DEDUP_REDIS_URL)')
  .option('--node-id <id>', 'name of this collector in object keys (default: generated once, kept in the log folder)')
  .option('--plans <tenant=file,...>', 'tracking plans by tenant (env TRACKLAKE_PLANS); a tenant without one is unchecked', plansArg)
  .option('--trust-proxy', 'take the client address from X-Forwarded-For (and the public host from X-Forwarded-Proto/-Host)')
  .option('--public-url <url>', 'the address browsers and apps reach this collector at, e.g. https://collect.example.com')
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
  .option('--no-scheduler', 'do not run the nightly jobs in this process')
  .option('--schedule-time <HH:MM>', 'time of the nightly jobs (default 01:00)')
  .option('--timezone <tz>', 'time zone of --schedule-time (default UTC)')
  .option('--lookback-days <n>', 'days the nightly run checks for late data (default 35)')
  .option('--job-memory-limit <bytes>', 'memory the nightly jobs\' DuckDB may use before it spills (default: a quarter of the machine\'s)')
  .option('--scratch-dir <dir>', 'where the nightly jobs stage, render and spill (default: the system\'s temp folder)')
  .option('--api-host <host>', 'address of the read side: query API and dashboard (default 127.0.0.1)')
  .option('--api-port <port>', 'port of the read side (default 8081; 0 picks a free one)')
  .option('--no-api', 'do not run the read side in this process')
  .action((opts: Record<string, unknown>) => run(() => serve(configFromOptions(opts, process.env))));

program
  .command('api')
  .description('run the read side alone: the query API and the dashboard over the storage\'s files')
  .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
  .option('--storage <where>', 'local folder or s3://bucket/prefix (default ./data)')
  .option('--state-dir <dir>', 'the node\'s own folder: its API secret and read cache (default ./.tracklake)')
  .option('--wal-dir <dir>', 'where versions before --state-dir kept the log: a secret beside it is carried over')
  .option('--api-host <host>', 'address to listen on (default 127.0.0.1)')
  .option('--api-port <port>', 'port to listen on (default 8081; 0 picks a free one)')
  .option('--lookback-days <n>', 'days back tracking files stand in for aggregates not computed yet (default 35)')
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
  .action((opts: Record<string, unknown>) => run(() => apiCommand(configFromOptions(opts, process.env))));

/** The options every job command shares: where, which days, how hard. */
function jobCommand(name: string, description: string, verb: string): Command {
  return program
    .command(name)
    .description(description)
    .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
    .option('--storage <where>', 'local folder or s3://bucket/prefix (default ./data)')
    .option('--date <YYYY-MM-DD>', `${verb} this day`)
    .option('--from <YYYY-MM-DD>', 'first day of a range')
    .option('--to <YYYY-MM-DD>', 'last day of a range')
    .option('--last <n>d', 'the n days ending today (UTC), e.g. 7d')
    .option('--pending', 'the nightly catch-up: yesterday and every changed or missing day of the lookback window')
    .option('--today <YYYY-MM-DD>', 'with --pending: the date to count back from (default: today, UTC)')
    .option('--lookback-days <n>', 'days the catch-up looks back (default 35)')
    .option('--force', 'recompute even when the input is unchanged')
    .option('--job-memory-limit <bytes>', 'memory DuckDB may use before it spills to the scratch folder (default: a quarter of the machine\'s)')
    .option('--scratch-dir <dir>', 'where inputs are staged, outputs rendered and DuckDB spills (default: the system\'s temp folder)')
    .option('--log-level <level>', 'log level (default info)');
}

/** A job command's action: its day selection apart, the rest of its flags as settings. */
const jobAction = (command: (config: Config, sel: DaySelection & { force?: boolean; rebuild?: boolean }, logger: Logger) => Promise<number>) => (o: Record<string, unknown>) =>
  run(() => {
    const { date, from, to, last, pending, today, force, rebuild, ...settings } = o;
    const config = configFromOptions(settings, process.env);
    return command(config, { date, from, to, last, pending, today, force, rebuild } as DaySelection & { force?: boolean; rebuild?: boolean }, makeLogger(config.logLevel));
  });

jobCommand('aggregate', 'compute daily, monthly, yearly and overall metric files', 'aggregate')
  .option('--rebuild', 'roll every month, year and overall file up from the daily files (repairs their state)')
  .action(jobAction(aggregateCommand));

program
  .command('simulate')
  .description('send realistic marketplace traffic to a collector')
  .option('--url <url>', 'collector base URL', 'http://127.0.0.1:8080')
  .option('--write-key <key>', 'write key', 'dev')
  .addOption(new Option('--events <n>', 'how many messages').default(10_000).argParser(intArg('events')))
  .addOption(new Option('--rate <n>', 'messages per second (default: as fast as possible)').argParser(intArg('rate', 1)))
  .addOption(new Option('--days <n>', 'spread events over the last N days').default(7).argParser(intArg('days', 1, 3650)))
  .addOption(new Option('--batch-size <n>', 'messages per /v1/batch request').default(20).argParser(intArg('batch-size', 1, LIMITS.batchMessages)))
  .addOption(new Option('--concurrency <n>', 'requests in flight').default(4).argParser(intArg('concurrency', 1, 1000)))
  .addOption(new Option('--seed <n>', 'random seed (same seed, same traffic)').default(42).argParser(intArg('seed')))
  .option('--end <iso-time>', 'end of the simulated period (default: now)')
  .addOption(new Option('--plan-violations <share>', 'share of track calls (0-1) made to break the naming conventions, for tracking plans to find').default(0).argParser(shareArg('plan-violations')))
  .action((o: { url: string; writeKey: string; events: number; rate?: number; days: number; batchSize: number; concurrency: number; seed: number; end?: string; planViolations: number }) =>
    run(async () => {
      const endMs = o.end === undefined ? Date.now() : Date.parse(o.end);
      if (!Number.isFinite(endMs)) throw new ConfigError('end', `"${o.end}" is not an ISO-8601 time`);
      if (!URL.canParse(o.url) || !/^https?:$/.test(new URL(o.url).protocol)) throw new ConfigError('url', `"${o.url}" is not an http(s) URL`);
      const r = await simulate({ ...o, endMs });
      return r.failed > 0 ? 1 : 0;
    }),
  );

jobCommand('sessions', 'track analysis: alias map, sessions, track facts, user facts', 'analyse')
  .option('--rebuild', 'recompute everything, the alias map included')
  .option('--inactivity-minutes <n>', 'idle minutes that end a session (default 30)')
  .action(jobAction(sessionsCommand));

program
  .command('funnel')
  .description("contingent funnel (or event flow) over the track facts of a range of days")
  .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
  .option('--storage <where>', 'local folder or s3://bucket/prefix (default ./data)')
  .option('--from <YYYY-MM-DD>', 'first day')
  .option('--to <YYYY-MM-DD>', 'last day')
  .option('--last <n>d', 'instead of --from/--to: the n days ending today (UTC), e.g. 7d')
  .option('--steps <events>', 'comma-separated steps, e.g. "load,view,chat,order"')
  .option('--flow <event>', 'instead of a funnel: what sessions did next after this event (4 steps deep)')
  .option('--tenant <id>', 'one tenant only')
  .option('--json', 'print JSON')
  .action((o: Record<string, unknown>) =>
    run(() => {
      const { from, to, last, steps, flow, tenant, json, ...settings } = o;
      return funnelCommand(configFromOptions(settings, process.env), { from, to, last, steps, flow, tenant, json } as Parameters<typeof funnelCommand>[1]);
    }),
  );

const plan = program.command('plan').description('tracking plans: the team\'s conventions and events (README, "Tracking plans")');
plan
  .command('check')
  .description('validate a tracking plan file (exit 2 naming the place and the problem)')
  .argument('<file>', 'the plan (YAML)')
  .action((file: string) => run(async () => planCheck(file)));

/** A plan command over stored files: where, which days, which tenant. */
function planRangeCommand(name: string, description: string): Command {
  return plan
    .command(name)
    .description(description)
    .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
    .option('--storage <where>', 'local folder or s3://bucket/prefix (default ./data)')
    .option('--plans <tenant=file,...>', 'tracking plans by tenant (env TRACKLAKE_PLANS)', plansArg)
    .requiredOption('--from <YYYY-MM-DD>', 'first day')
    .requiredOption('--to <YYYY-MM-DD>', 'last day')
    .option('--tenant <id>', 'one tenant only')
    .option('--json', 'print JSON')
    .option('--job-memory-limit <bytes>', 'memory DuckDB may use before it spills (default: a quarter of the machine\'s)')
    .option('--scratch-dir <dir>', 'where inputs are staged and DuckDB spills (default: the system\'s temp folder)');
}

const rangeAction = (body: (config: Config, o: RangeOptions) => Promise<number>) => (o: Record<string, unknown>) =>
  run(() => {
    const { from, to, tenant, json, ...settings } = o;
    return body(configFromOptions(settings, process.env), { from, to, tenant, json } as RangeOptions);
  });

planRangeCommand('replay', 'send quarantined messages that pass the current plan into the tracking files, once').action(rangeAction(planReplay));
planRangeCommand('lint', 'check the conventions over history: event names, variants, flattening, forbidden properties, unplanned events (exit 1 when found)').action(rangeAction(planLint));
planRangeCommand('report', 'violations per event and type, with counts and a sample each').action(rangeAction(planReport));

plan
  .command('infer')
  .description('write a draft plan from a tenant\'s observed schemas')
  .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
  .option('--storage <where>', 'local folder or s3://bucket/prefix (default ./data)')
  .requiredOption('--tenant <id>', 'the tenant whose traffic to draw from')
  .option('--from <YYYY-MM-DD>', 'first day (default: every day observed)')
  .option('--to <YYYY-MM-DD>', 'last day')
  .option('--out <file>', 'write the plan here (default: standard output)')
  .action((o: Record<string, unknown>) =>
    run(() => {
      const { tenant, from, to, out, ...settings } = o;
      return planInfer(configFromOptions(settings, process.env), { tenant, from, to, out } as Parameters<typeof planInfer>[1]);
    }),
  );

plan
  .command('typegen')
  .description('write typed tracking functions, one per planned event')
  .argument('[file]', 'the plan (default: the --tenant\'s configured plan)')
  .option('--lang <lang>', 'the language (ts)', 'ts')
  .option('--client <kind>', 'browser: track(event, properties) as analytics.js; node: track({ event, properties, userId })', 'browser')
  .option('--tenant <id>', 'use this tenant\'s configured plan')
  .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
  .option('--plans <tenant=file,...>', 'tracking plans by tenant (env TRACKLAKE_PLANS)', plansArg)
  .option('--out <file>', 'write the module here (default: standard output)')
  .action((file: string | undefined, o: Record<string, unknown>) =>
    run(() => {
      const { lang, client, tenant, out, ...settings } = o;
      const config = file === undefined ? configFromOptions(settings, process.env) : undefined;
      return planTypegen(config, { file, tenant, lang, client, out } as Parameters<typeof planTypegen>[1]);
    }),
  );

program
  .command('warehouse')
  .description('the bucket on other engines')
  .command('ddl')
  .description('print the DDL that exposes the bucket\'s files as tables of another engine')
  .requiredOption('--engine <engine>', 'duckdb, athena, trino, clickhouse, bigquery or snowflake')
  .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
  .option('--storage <where>', 'local folder or s3://bucket/prefix (default ./data)')
  .action((o: Record<string, unknown>) =>
    run(async () => {
      const { engine, ...settings } = o;
      process.stdout.write(await warehouseDdl(configFromOptions(settings, process.env), String(engine)));
      return 0;
    }),
  );

program
  .command('token')
  .description('tokens for the read side (query API and dashboard)')
  .command('create')
  .description('print a signed token for a tenant, or for one merchant of it')
  .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
  .option('--state-dir <dir>', 'the node\'s folder, where the kept secret lies (default ./.tracklake)')
  .option('--wal-dir <dir>', 'where versions before --state-dir kept the log: a secret beside it is carried over')
  .requiredOption('--tenant <id>', 'the tenant the token may read')
  .option('--merchant <id>', 'only this merchant\'s rows')
  .option('--expires <duration>', 'lifetime: 30d, 12h, 90m, 3600s (default 30d)')
  .option('--scope <scope>', 'read (the query API and dashboard; the default) or privacy (the regulations API only)')
  .action((o: Record<string, unknown>) =>
    run(async () => {
      const { tenant, merchant, expires, scope, ...settings } = o;
      const token = await tokenCreate(configFromOptions(settings, process.env), { tenant, merchant, expires, scope } as Parameters<typeof tokenCreate>[1]);
      process.stdout.write(`${token}\n`);
    }),
  );

const collect = (v: string, prev: string[] = []) => [...prev, v];
program
  .command('regulate')
  .description('file a privacy regulation: suppress, delete, or both, for users or devices of a tenant')
  .option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)')
  .option('--storage <where>', 'local folder or s3://bucket/prefix (default ./data)')
  .option('--tenant <id>', 'the tenant the subjects belong to')
  .option('--delete', 'remove every row about them (by the next erasure run: nightly, or `regulations run`)')
  .option('--suppress', 'store nothing more from them (within privacyRefreshSeconds on every collector)')
  .option('--unsuppress', 'lift a suppression for what comes after')
  .option('--user <id>', 'a user id (accountid); repeat for more', collect)
  .option('--device <id>', 'a device or anonymous id (deviceid); repeat for more', collect)
  .action((o: Record<string, unknown>) =>
    run(() => {
      const { tenant, delete: del, suppress, unsuppress, user, device, ...settings } = o;
      return regulateCommand(configFromOptions(settings, process.env), { tenant, delete: del, suppress, unsuppress, user, device } as RegulateOptions);
    }),
  );

const regulations = program.command('regulations').description('privacy regulations: list, show, and run the pending deletions');
const storageOptions = (c: Command) => c.option('--config <file>', 'JSON config file (env TRACKLAKE_CONFIG)').option('--storage <where>', 'local folder or s3://bucket/prefix (default ./data)');
storageOptions(regulations.command('list').description('every regulation, oldest first (one JSON line each)').option('--tenant <id>', 'one tenant only'))
  .action((o: Record<string, unknown>) => run(() => {
    const { tenant, ...settings } = o;
    return regulationsList(configFromOptions(settings, process.env), { tenant: tenant as string | undefined });
  }));
storageOptions(regulations.command('show').description('one regulation: its status and what it did').argument('<id>', 'the regulateId').requiredOption('--tenant <id>', 'its tenant'))
  .action((id: string, o: Record<string, unknown>) => run(() => {
    const { tenant, ...settings } = o;
    return regulationsShow(configFromOptions(settings, process.env), { tenant: tenant as string, id });
  }));
storageOptions(regulations.command('run').description('run the pending deletions now, all in one pass (as the nightly run does)').argument('[id]', 'only this regulation')
  .option('--job-memory-limit <bytes>', 'memory DuckDB may use when recomputing the days (default: a quarter of the machine\'s)')
  .option('--scratch-dir <dir>', 'where DuckDB stages and spills (default: the system\'s temp folder)')
  .option('--log-level <level>', 'log level (default info)'))
  .action((id: string | undefined, o: Record<string, unknown>) => run(() => {
    const config = configFromOptions(o, process.env);
    return regulationsRun(config, { id }, makeLogger(config.logLevel));
  }));

const destinations = program.command('destinations').description('where collectors forward what they log (README, "Destinations")');
const destinationOptions = (c: Command) => storageOptions(c).option('--state-dir <dir>', 'the node\'s folder, where its cursors lie (default ./.tracklake)').option('--wal-dir <dir>', 'its log, when not in the state folder');
destinationOptions(destinations.command('status').description('per destination: delivered, retried, dead-lettered, lag, backlog, the last error').option('--json', 'one JSON array'))
  .action((o: Record<string, unknown>) => run(async () => {
    const { json, ...settings } = o;
    const rows = await destinationsStatus(configFromOptions(settings, process.env));
    process.stdout.write(json ? `${JSON.stringify(rows, null, 2)}\n` : formatStatus(rows));
    return rows.some((r) => r.failing !== null) ? 1 : 0;
  }));
storageOptions(destinations.command('replay').description('send a destination\'s dead letters of these days again; what fails again stays').argument('<name>', 'the destination')
  .requiredOption('--from <day>', 'first day the messages failed, YYYY-MM-DD').requiredOption('--to <day>', 'last day, YYYY-MM-DD').option('--log-level <level>', 'log level (default info)'))
  .action((name: string, o: Record<string, unknown>) => run(async () => {
    const { from, to, ...settings } = o;
    const r = await destinationsReplay(configFromOptions(settings, process.env), name, { from: from as string, to: to as string });
    process.stdout.write(`${r.files} files: ${r.sent} messages sent, ${r.failed} failed again (left in their files)${r.leftOut ? `, ${r.leftOut} of suppressed or erased subjects left alone` : ''}\n`);
    return r.failed > 0 ? 1 : 0;
  }));

// Through run(): a flag refused while commander parses (intArg) gets the same message and exit code as one
// refused in an action.
await run(async () => {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    // Commander has printed the message (and the help); help asked for (--help, `help serve`) ends with 0.
    process.exit(e.exitCode === 0 ? 0 : 2);
  }
});
