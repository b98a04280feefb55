/**
 * A validated Query as one SQL statement over the read cache, built from a closed set of pieces: column
 * expressions come from the tables below, never from the request, and every value the request carries
 * (tenant, merchant, days, filter values) is a bound parameter. Each family (aggregates, sessions) is
 * grouped on its own and the two are joined on the query's dimensions.
 */
import { LIST, VARCHAR, listValue, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import { addDays, daysBetween } from '../lib/dates.js';
import type { ComputedThrough } from './cache.js';
import { type Family, type Filter, type Query, SESSION_METRICS } from './model.js';

/** Dimension → its expression in each family's relation (a text value; '' for none). */
const DIMENSION_SQL: Record<Family, Record<string, string>> = {
  aggregates: { 'time:day': "strftime(day, '%Y-%m-%d')", 'time:month': "strftime(day, '%Y-%m')", merchant: 'merchantid', product: 'productid' },
  sessions: { 'time:day': "strftime(day, '%Y-%m-%d')", 'time:month': "strftime(day, '%Y-%m')", source: 'source', devicetype: 'devicetype', landing_page: 'landing_page' },
};

/** Session metrics as aggregates over `sess`; durations are stored in milliseconds. */
const SESSION_METRIC_SQL: Record<(typeof SESSION_METRICS)[number], string> = {
  sessions: 'count(*)::DOUBLE',
  bounce_rate: 'coalesce(avg(CASE WHEN bounce THEN 1.0 ELSE 0.0 END), 0)',
  avg_session_seconds: 'coalesce(avg(duration) / 1000.0, 0)',
  events: 'coalesce(sum(events), 0)::DOUBLE',
};

export interface Compiled {
  sql: string;
  values: Record<string, DuckDBValue>;
  types: Record<string, DuckDBType>;
}

class Params {
  readonly values: Record<string, DuckDBValue> = {};
  readonly types: Record<string, DuckDBType> = {};
  private n = 0;
  text(v: string): string {
    const name = `p${this.n++}`;
    this.values[name] = v;
    this.types[name] = VARCHAR;
    return `$${name}`;
  }
  list(vs: readonly string[]): string {
    const name = `p${this.n++}`;
    this.values[name] = listValue([...vs]);
    this.types[name] = LIST(VARCHAR);
    return `$${name}`;
  }
  day(d: string): string {
    return `${this.text(d)}::DATE`;
  }
}

export const familyOf = (metric: string): Family => ((SESSION_METRICS as readonly string[]).includes(metric) ? 'sessions' : 'aggregates');

const dimCol = (i: number) => `k${i}`;
const metricCol = (i: number) => `m${i}`;

/**
 * The days a range covers, with "all" starting at the first day anything is loaded (the caller's `first`).
 * The previous period is the same number of days just before.
 */
export function previousPeriod(from: string, to: string): { from: string; to: string; days: number } {
  const days = daysBetween(from, to).length;
  return { from: addDays(from, -days), to: addDays(from, -1), days };
}

/** One family's grouped rows for a range: columns k0.. (the query's dimensions) and m0.. (its metrics of this family). */
function familySelect(family: Family, q: Query, range: { from: string | null; to: string }, p: Params, ct: ComputedThrough, allMetrics: readonly string[], shiftDays: number): string {
  const dims = q.dimensions.map((d, i) => {
    const expr = DIMENSION_SQL[family][d]!;
    // The previous period's days are moved onto the current period's, so a daily series joins day by day.
    const shifted = shiftDays !== 0 && d === 'time:day' ? `strftime(day + ${shiftDays}, '%Y-%m-%d')` : expr;
    return `${shifted} AS ${dimCol(i)}`;
  });
  const where: string[] = [`tenantid = ${p.text(q.tenant)}`, `day <= ${p.day(range.to)}`];
  if (range.from !== null) where.push(`day >= ${p.day(range.from)}`);
  const metrics: string[] = [];
  let source: string;
  if (family === 'aggregates') {
    q.metrics.forEach((m, i) => {
      if (familyOf(m) === 'aggregates') metrics.push(`coalesce(sum(value) FILTER (WHERE metric = ${p.text(m)}), 0) AS ${metricCol(i)}`);
    });
    // Only some of the cache's metrics: a plain IN list of parameters, a filter DuckDB pushes into the scan (a
    // list parameter would be a join). With all of them it would keep every row and cost a third of the query.
    const wanted = q.metrics.filter((m) => familyOf(m) === 'aggregates');
    if (wanted.length < allMetrics.length) where.push(`metric IN (${wanted.map((m) => p.text(m)).join(', ')})`);
    if (q.merchant !== null) where.push(`merchantid = ${p.text(q.merchant)}`);
    // Days the aggregate job computed come from its files, later ones from the tracking files (tail_agg).
    const through = ct.aggregates === null ? "DATE '0001-01-01'" : p.day(ct.aggregates);
    source = `(SELECT day, metric, tenantid, merchantid, productid, value FROM agg WHERE day <= ${through}
      UNION ALL SELECT day, metric, tenantid, merchantid, productid, value FROM tail_agg WHERE day > ${through})`;
    for (const f of q.filters) where.push(filterSql(f, DIMENSION_SQL.aggregates[f.dimension]!, p));
  } else {
    q.metrics.forEach((m, i) => {
      if (familyOf(m) === 'sessions') metrics.push(`${SESSION_METRIC_SQL[m as keyof typeof SESSION_METRIC_SQL]} AS ${metricCol(i)}`);
    });
    source = sessionsRelation(ct);
    for (const f of q.filters) {
      if (f.dimension === 'merchant' || f.dimension === 'product') {
        // Sessions with an event of the merchant or product: their facts lie on the start day or the next.
        const column = f.dimension === 'merchant' ? 'merchantid' : 'productid';
        const factDays = [`day <= ${p.day(addDays(range.to, 1))}`, ...(range.from !== null ? [`day >= ${p.day(range.from)}`] : [])];
        const inner = `SELECT session_id FROM ${factsRelation(ct)} WHERE tenantid = ${p.text(q.tenant)} AND ${factDays.join(' AND ')} AND list_contains(${p.list(f.values)}, ${column})`;
        where.push(`session_id ${f.op === 'is' ? 'IN' : 'NOT IN'} (${inner})`);
      } else {
        where.push(filterSql(f, DIMENSION_SQL.sessions[f.dimension]!, p));
      }
    }
  }
  const group = dims.length > 0 ? `GROUP BY ${q.dimensions.map((_, i) => dimCol(i)).join(', ')}` : '';
  return `SELECT ${[...dims, ...metrics].join(', ')} FROM ${source} WHERE ${where.join(' AND ')} ${group}`;
}

/** A day as a SQL literal (days are validated YYYY-MM-DD strings, never request text). */
const dateLiteral = (d: string | null) => `DATE '${d ?? '0001-01-01'}'`;

/**
 * Sessions: the sessions job's days from `sess`, later ones from `tail_sess` (computed by the read cache
 * with the same job); the same split for the track facts.
 */
export const sessionsRelation = (ct: ComputedThrough) =>
  `(SELECT * FROM sess WHERE day <= ${dateLiteral(ct.sessions)} UNION ALL SELECT * FROM tail_sess WHERE day > ${dateLiteral(ct.sessions)})`;
export const factsRelation = (ct: ComputedThrough) =>
  `(SELECT * FROM facts WHERE day <= ${dateLiteral(ct.sessions)} UNION ALL SELECT * FROM tail_facts WHERE day > ${dateLiteral(ct.sessions)})`;

function filterSql(f: Filter, column: string, p: Params): string {
  const test = `list_contains(${p.list(f.values)}, ${column})`;
  return f.op === 'is' ? test : `NOT ${test}`;
}

/** Both families' rows for a range, joined on the dimensions; every metric column present (0 when absent). */
function rangeSelect(q: Query, range: { from: string | null; to: string }, p: Params, ct: ComputedThrough, allMetrics: readonly string[], shiftDays = 0): string {
  const families = [...new Set(q.metrics.map(familyOf))];
  const parts = families.map((f) => familySelect(f, q, range, p, ct, allMetrics, shiftDays));
  const metrics = q.metrics.map((_, i) => `coalesce(${metricCol(i)}, 0) AS ${metricCol(i)}`);
  const dims = q.dimensions.map((_, i) => dimCol(i));
  if (parts.length === 1) return `SELECT ${[...dims, ...metrics].join(', ')} FROM (${parts[0]})`;
  const join = dims.length > 0 ? `FULL OUTER JOIN (${parts[1]}) AS b USING (${dims.join(', ')})` : `CROSS JOIN (${parts[1]}) AS b`;
  return `SELECT ${[...dims, ...metrics].join(', ')} FROM (${parts[0]}) AS a ${join}`;
}

/** The ORDER BY: the query's own order, then every dimension ascending so pages are stable. */
function orderSql(q: Query): string {
  const name = (x: string) => (q.metrics.includes(x) ? metricCol(q.metrics.indexOf(x)) : dimCol(q.dimensions.indexOf(x)));
  const order = q.orderBy.map(([x, dir]) => `${name(x)} ${dir.toUpperCase()}`);
  if (order.length === 0) {
    const time = q.dimensions.findIndex((d) => d.startsWith('time:'));
    // A series runs forward in time; a breakdown puts its biggest rows first.
    if (time >= 0) order.push(`${dimCol(time)} ASC`);
    else if (q.dimensions.length > 0) order.push(`${metricCol(0)} DESC`);
  }
  for (const [i] of q.dimensions.entries()) order.push(`${dimCol(i)} ASC`);
  return order.length > 0 ? `ORDER BY ${order.join(', ')}` : '';
}

/** `allMetrics`: the aggregate metrics the cache holds (the configured ones). */
export function compileQuery(q: Query, ct: ComputedThrough, allMetrics: readonly string[]): Compiled {
  const p = new Params();
  const dims = q.dimensions.map((_, i) => `cur.${dimCol(i)}`);
  const metrics = q.metrics.map((_, i) => `round(cur.${metricCol(i)}, 10) AS ${metricCol(i)}`);
  let body = `SELECT ${[...dims, ...metrics].join(', ')}`;
  let from = `(${rangeSelect(q, q.dateRange, p, ct, allMetrics)}) AS cur`;
  if (q.compare === 'previous_period' && q.dateRange.from !== null) {
    const prev = previousPeriod(q.dateRange.from, q.dateRange.to);
    body += `, ${q.metrics.map((_, i) => `round(coalesce(prev.${metricCol(i)}, 0), 10) AS c${i}`).join(', ')}`;
    const on = q.dimensions.length > 0 ? `USING (${q.dimensions.map((_, i) => dimCol(i)).join(', ')})` : 'ON true';
    from += ` LEFT JOIN (${rangeSelect(q, prev, p, ct, allMetrics, prev.days)}) AS prev ${on}`;
  }
  // ORDER BY names the output columns (k0.., m0..); total_rows counts the groups before LIMIT.
  const statement = `${body}, count(*) OVER () AS total_rows FROM ${from} ${orderSql(q)} LIMIT ${q.limit} OFFSET ${q.offset}`;
  return { sql: statement, values: p.values, types: p.types };
}
