/**
 * One side of bench:aggregate's steady-state case, in a process of its own so its peak resident memory is
 * its own: `job <root> <day> [threads]` runs `tracklake aggregate` for the day; `floor <root> <day>
 * [threads]` is the floor: one DuckDB process that scans the day's tracking files once and writes each
 * output at its real size (the daily files; the month, year and overall state files by reading the previous
 * file and merging the day in; the month and year public files); `sessions <root> <day> [threads]` runs
 * `tracklake sessions` for the day; `job-force` recomputes the day even when unchanged; `raw <root> <day>` is
 * the small-key floor, one hand-written query for the day's three daily results. Prints {"seconds", "peakMiB"}.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { runAggregates } from '../src/jobs/aggregates/job.js';
import { metricSet } from '../src/jobs/aggregates/metrics.js';
import { runSessions } from '../src/jobs/sessions/job.js';
import { Engine, sqlString } from '../src/jobs/engine.js';
import { readCsvSql, readTracksSql } from '../src/jobs/tracks.js';
import { dayPath, dayStartMs } from '../src/lib/dates.js';
import { LocalStore } from '../src/storage/local.js';

const [mode, root, day, threadsArg] = process.argv.slice(2) as [string, string, string, string | undefined];
const threads = threadsArg ? Number(threadsArg) : undefined;
const metrics = metricSet();
const AGG = { time: 'BIGINT', tenantid: 'VARCHAR', merchantid: 'VARCHAR', productid: 'VARCHAR', value: 'DOUBLE' };
const ORDER = 'ORDER BY tenantid, merchantid NULLS FIRST, productid';

async function floor(): Promise<void> {
  const engine = await Engine.open({ threads });
  const dir = path.join(root, 'tracks', dayPath(day));
  const files = (await fs.readdir(dir)).map((f) => path.join(dir, f));
  const start = dayStartMs(day);
  const [month, year] = [day.slice(0, 7).replace('-', '/'), day.slice(0, 4)];
  await engine.run(`CREATE TABLE d AS SELECT tenantid, merchantid, productid, ${metrics.map((m) => `count(*) FILTER (WHERE event = ${sqlString(m.name)}) AS "${m.name}"`).join(', ')}
    FROM ${readTracksSql(files)} WHERE productid IS NOT NULL AND bot IS DISTINCT FROM true AND time IS NOT NULL GROUP BY ALL`);
  const out = async (rel: string) => {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    return path.join(root, rel);
  };
  // Metrics side by side, as the job renders them: each COPY of a sorted result is mostly one thread.
  await Promise.all(metrics.map(async (m) => {
    await engine.copyToCsv(`SELECT ${start}::BIGINT AS time, tenantid, merchantid, productid, plain_decimal("${m.name}") AS value FROM d WHERE "${m.name}" <> 0 ${ORDER}`, await out(`aggregates/daily/${dayPath(day)}/${m.name}.csv`));
    for (const [state, pub, t] of [[`aggregates/_state/monthly/${month}/${m.name}.csv`, `aggregates/monthly/${month}/${m.name}.csv`, dayStartMs(`${day.slice(0, 7)}-01`)], [`aggregates/_state/yearly/${year}/${m.name}.csv`, `aggregates/yearly/${year}/${m.name}.csv`, dayStartMs(`${year}-01-01`)], [`aggregates/overall/${m.name}.csv`, undefined, 0]] as const) {
      const prev = path.join(root, state);
      const next = `${prev}.next`;
      await engine.copyToCsv(`SELECT coalesce(l.time, ${start}) AS time, tenantid, merchantid, productid, plain_decimal(coalesce(l.value, 0) + coalesce(d."${m.name}", 0)) AS value
        FROM ${readCsvSql([prev], AGG)} AS l FULL OUTER JOIN (SELECT * FROM d WHERE "${m.name}" <> 0) AS d USING (tenantid, merchantid, productid) ${ORDER}`, next);
      await fs.rename(next, prev);
      if (pub) await engine.copyToCsv(`SELECT ${t}::BIGINT AS time, tenantid, merchantid, productid, value FROM ${readCsvSql([prev], { ...AGG, value: 'VARCHAR' })}`, await out(pub));
    }
  }));
  engine.close();
}

/** The three daily results in one query, straight from the day's files. */
async function raw(): Promise<void> {
  const engine = await Engine.open({ threads });
  const dir = path.join(root, 'tracks', dayPath(day));
  const files = (await fs.readdir(dir)).map((f) => path.join(dir, f));
  await engine.all(`
    SELECT tenantid, coalesce(merchantid, '') AS merchantid, productid,
           count(*) FILTER (WHERE event = 'view') AS view,
           count(*) FILTER (WHERE event = 'share') AS share,
           count(*) FILTER (WHERE event = 'chat') AS chat
    FROM ${readTracksSql(files)}
    WHERE productid IS NOT NULL AND bot IS DISTINCT FROM true AND time IS NOT NULL
    GROUP BY ALL ORDER BY ALL`);
  engine.close();
}

const t = process.hrtime.bigint();
if (mode === 'floor') await floor();
else if (mode === 'raw') await raw();
else if (mode === 'sessions') await runSessions([day], { store: new LocalStore(root), logger: pino({ level: 'silent' }), inactivityMinutes: 30, includeBots: false, lookbackDays: 35, threads });
else await runAggregates([day], { store: new LocalStore(root), metrics, logger: pino({ level: 'silent' }), threads, force: mode === 'job-force' });
const seconds = Number(process.hrtime.bigint() - t) / 1e9;
process.stdout.write(`${JSON.stringify({ seconds, peakMiB: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
