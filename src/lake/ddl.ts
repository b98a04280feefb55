/**
 * The bucket as tables of other engines: the DDL that exposes tracking files, identity links, violations,
 * aggregates, sessions, track facts, the alias map and user facts as external tables (or views over the
 * files) of DuckDB, Athena, Trino, ClickHouse, BigQuery or Snowflake. Columns and types come from the
 * layout (lake/layout.ts), so a column added there reaches every engine.
 *
 * The layout's day folders are `<yyyy>/<mm>/<dd>/`, not Hive's `year=…/`: Athena reads them through
 * partition projection; the others read the folders' files by glob or recursively. An aggregate file's
 * metric is its file name (`aggregates/daily/<yyyy>/<mm>/<dd>/<metric>.csv`): each engine takes it from the
 * file's path into a `metric` column. Files under `_state/` are the jobs' own and never exposed.
 */
import { LAKE, type ColumnTypes } from './layout.js';

export const ENGINES = ['duckdb', 'athena', 'trino', 'clickhouse', 'bigquery', 'snowflake'] as const;
export type Engine = (typeof ENGINES)[number];

interface Exposed {
  table: string;
  columns: ColumnTypes;
  /** The folder under the bucket's prefix. */
  folder: string;
  /** Folder levels between it and the files: 3 for day folders, 2 months, 1 years, 0 none. */
  depth: 0 | 1 | 2 | 3;
  /** The files' name: one fixed name, or any CSV (`*.csv`). */
  file: string;
  /** Whether the file name is the metric (aggregates). */
  metric?: boolean;
}

export const EXPOSED: readonly Exposed[] = [
  { table: 'tracks', columns: LAKE.tracks.columns, folder: 'tracks', depth: 3, file: '*.csv' },
  { table: 'identities', columns: LAKE.identities.columns, folder: 'identities', depth: 3, file: '*.csv' },
  { table: 'violations', columns: LAKE.violations.columns, folder: 'violations', depth: 3, file: '*.csv' },
  { table: 'aggregates_daily', columns: LAKE.aggregatesDaily.columns, folder: 'aggregates/daily', depth: 3, file: '*.csv', metric: true },
  { table: 'aggregates_monthly', columns: LAKE.aggregatesMonthly.columns, folder: 'aggregates/monthly', depth: 2, file: '*.csv', metric: true },
  { table: 'aggregates_yearly', columns: LAKE.aggregatesYearly.columns, folder: 'aggregates/yearly', depth: 1, file: '*.csv', metric: true },
  { table: 'aggregates_overall', columns: LAKE.aggregatesOverall.columns, folder: 'aggregates/overall', depth: 0, file: '*.csv', metric: true },
  { table: 'sessions', columns: LAKE.sessions.columns, folder: 'sessions', depth: 3, file: 'sessions.csv' },
  { table: 'track_facts', columns: LAKE.trackFacts.columns, folder: 'track_facts', depth: 3, file: 'track_facts.csv' },
  { table: 'alias_map', columns: LAKE.aliasMap.columns, folder: 'aliases', depth: 0, file: 'alias_map.csv' },
  { table: 'user_facts', columns: LAKE.userFacts.columns, folder: 'users', depth: 0, file: 'user_facts.csv' },
];

/** DuckDB's types (the layout's) in each engine's words. */
const TYPES: Record<Exclude<Engine, 'duckdb'>, Record<string, string>> = {
  athena: { BIGINT: 'bigint', VARCHAR: 'string', DOUBLE: 'double', BOOLEAN: 'boolean' },
  trino: { BIGINT: 'bigint', VARCHAR: 'varchar', DOUBLE: 'double', BOOLEAN: 'boolean' },
  clickhouse: { BIGINT: 'Nullable(Int64)', VARCHAR: 'Nullable(String)', DOUBLE: 'Nullable(Float64)', BOOLEAN: 'Nullable(Bool)' },
  bigquery: { BIGINT: 'INT64', VARCHAR: 'STRING', DOUBLE: 'FLOAT64', BOOLEAN: 'BOOL' },
  snowflake: { BIGINT: 'NUMBER(19,0)', VARCHAR: 'VARCHAR', DOUBLE: 'DOUBLE', BOOLEAN: 'BOOLEAN' },
};

/**
 * The DDL for an engine. `location`: the bucket's URL (s3://bucket/prefix, gs://…) or a local folder.
 * `present`: the tables that have files yet, for DuckDB, which binds a view's files when it is made (a view
 * over a glob that matches nothing is an error); the others are printed as comments to run later.
 */
export function ddl(engine: Engine, location: string, present?: ReadonlySet<string>): string {
  const base = location.replace(/\/+$/, '');
  const head = `-- tracklake: the bucket ${base} as tables (${engine}); printed by \`tracklake warehouse ddl --engine ${engine}\`.\n`;
  return head + (engine === 'duckdb' ? duckdb(base, present) : { athena, trino, clickhouse, bigquery, snowflake }[engine](base));
}

/** Whether a key of the bucket is one of the table's files (never the jobs' _state/ files). */
export function isTableFile(e: Exposed, key: string): boolean {
  if (!key.startsWith(`${e.folder}/`) || key.includes('/_state/')) return false;
  const rest = key.slice(e.folder.length + 1).split('/');
  const name = rest.pop()!;
  return rest.length === e.depth && rest.every((p) => /^\d+$/.test(p)) && (e.file === '*.csv' ? name.endsWith('.csv') : name === e.file);
}

const glob = (e: Exposed) => `${e.folder}/${'*/'.repeat(e.depth)}${e.file}`;
const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;
/** Column names that are reserved words somewhere (time, end, start, value, …) are always quoted. */
const q = (name: string, mark = '"') => `${mark}${name}${mark}`;

function duckdb(base: string, present?: ReadonlySet<string>): string {
  return EXPOSED.map((e) => {
    const cols = Object.entries(e.columns).map(([c, t]) => `${quote(c)}: ${quote(t)}`).join(', ');
    const read = `read_csv(${quote(`${base}/${glob(e)}`)}, header = true, columns = {${cols}}${e.metric ? ', filename = true' : ''})`;
    const select = e.metric ? `regexp_extract(filename, '([^/]+)\\.csv$', 1) AS metric, * EXCLUDE (filename)` : '*';
    const view = `CREATE OR REPLACE VIEW ${e.table} AS SELECT ${select} FROM ${read};\n`;
    return !present || present.has(e.table) ? view : `-- ${e.table}: no files yet; once there are:\n-- ${view}`;
  }).join('');
}

/** Athena: tables over each folder; day folders through partition projection, so no partition is ever added. */
function athena(base: string): string {
  const parts: Record<number, string[]> = { 0: [], 1: ['year'], 2: ['year', 'month'], 3: ['year', 'month', 'day'] };
  return [
    `-- OpenCSVSerde reads the quoted CSV. Athena skips folders whose name starts with _ (the jobs' _state/).\n`,
    ...EXPOSED.map((e) => {
      const keys = parts[e.depth]!;
      const cols = Object.entries(e.columns).map(([c, t]) => `  ${q(c, '`')} ${TYPES.athena[t]}`).join(',\n');
      const projection = keys.length === 0 ? '' :
        `,\n  'projection.enabled' = 'true',\n` +
        keys.map((k) => `  'projection.${k}.type' = 'integer', 'projection.${k}.range' = '${{ year: '2000,2100', month: '1,12', day: '1,31' }[k]}', 'projection.${k}.digits' = '${k === 'year' ? 4 : 2}'`).join(',\n') +
        `,\n  'storage.location.template' = '${base}/${e.folder}/${keys.map((k) => `\${${k}}`).join('/')}/'`;
      const table = `${e.table}${e.metric ? '_files' : ''}`;
      let out = `CREATE EXTERNAL TABLE IF NOT EXISTS ${table} (\n${cols}\n)${keys.length ? `\nPARTITIONED BY (${keys.map((k) => `${k} int`).join(', ')})` : ''}\n` +
        `ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'\nLOCATION '${base}/${e.folder}/'\n` +
        `TBLPROPERTIES (\n  'skip.header.line.count' = '1'${projection}\n);\n`;
      if (e.metric) out += `CREATE OR REPLACE VIEW ${e.table} AS SELECT regexp_extract("$path", '([^/]+)\\.csv$', 1) AS metric, * FROM ${table};\n`;
      return out;
    }),
  ].join('\n');
}

/**
 * Trino's Hive connector reads CSV only as varchar columns: a table of text per folder (read recursively:
 * `hive.recursive-directories=true` in the catalog), and a typed view over it.
 */
function trino(base: string): string {
  return [
    `-- In the Hive catalog's properties: hive.recursive-directories=true (the day folders are not Hive partitions).\n-- Run in a schema of that catalog: CREATE SCHEMA IF NOT EXISTS hive.tracklake; USE hive.tracklake;\n`,
    ...EXPOSED.map((e) => {
      const text = Object.keys(e.columns).map((c) => `  ${q(c)} varchar`).join(',\n');
      const typed = Object.entries(e.columns).map(([c, t]) => (t === 'VARCHAR' ? `NULLIF(${q(c)}, '') AS ${q(c)}` : `TRY_CAST(NULLIF(${q(c)}, '') AS ${TYPES.trino[t]}) AS ${q(c)}`)).join(',\n  ');
      const filter = e.file === '*.csv' ? `"$path" LIKE '%.csv'` : `"$path" LIKE '%/${e.file}'`;
      const metric = e.metric ? `regexp_extract("$path", '([^/]+)\\.csv$', 1) AS metric,\n  ` : '';
      return `CREATE TABLE IF NOT EXISTS ${e.table}_text (\n${text}\n) WITH (external_location = '${base}/${e.folder}', format = 'CSV', skip_header_line_count = 1);\n` +
        `CREATE OR REPLACE VIEW ${e.table} AS SELECT\n  ${metric}${typed}\nFROM ${e.table}_text WHERE ${filter} AND "$path" NOT LIKE '%/\\_state/%' ESCAPE '\\';\n`;
    }),
  ].join('\n');
}

/** ClickHouse: views over the s3() table function with globs; the credentials are the server's (or add them). */
function clickhouse(base: string): string {
  const url = base.startsWith('s3://') ? `https://${base.slice(5).replace(/^([^/]+)/, '$1.s3.amazonaws.com')}` : base;
  return [
    base.startsWith('s3://') ? `-- ${base} as an HTTPS URL; for another region or an S3-compatible server, change the host.\n` : '',
    ...EXPOSED.map((e) => {
      const structure = Object.entries(e.columns).map(([c, t]) => `${c} ${TYPES.clickhouse[t]}`).join(', ');
      const select = e.metric ? `replaceRegexpOne(_file, '\\\\.csv$', '') AS metric, *` : '*';
      return `CREATE OR REPLACE VIEW ${e.table} AS SELECT ${select} FROM s3('${url}/${glob(e)}', 'CSVWithNames', '${structure}');\n`;
    }),
  ].join('');
}

/**
 * BigQuery external tables. On Google Cloud Storage (gs://) as they are; an s3:// bucket is read through
 * BigQuery Omni, with a connection of yours (`WITH CONNECTION`).
 */
function bigquery(base: string): string {
  const omni = base.startsWith('s3://');
  return [
    `-- Replace tracklake with your dataset${omni ? ', and `project.aws-us-east-1.s3` with your BigQuery Omni connection to the bucket' : ''}.\n`,
    ...EXPOSED.map((e) => {
      const cols = Object.entries(e.columns).map(([c, t]) => `  ${q(c, '`')} ${TYPES.bigquery[t]}`).join(',\n');
      // One wildcard, which matches across folders: the file name keeps other files out.
      const uri = `${base}/${e.folder}/${e.depth === 0 ? e.file : `*${e.file === '*.csv' ? '.csv' : `/${e.file}`}`}`;
      const table = `${e.table}${e.metric ? '_files' : ''}`;
      let out = `CREATE OR REPLACE EXTERNAL TABLE tracklake.${table} (\n${cols}\n)${omni ? '\nWITH CONNECTION `project.aws-us-east-1.s3`' : ''}\n` +
        `OPTIONS (format = 'CSV', skip_leading_rows = 1, uris = ['${uri}']);\n`;
      if (table !== e.table) {
        const metric = `REGEXP_EXTRACT(_FILE_NAME, r'([^/]+)\\.csv$') AS metric, `;
        out += `CREATE OR REPLACE VIEW tracklake.${e.table} AS SELECT ${metric}* FROM tracklake.${table};\n`;
      }
      return out;
    }),
  ].join('\n');
}

/** Snowflake: a stage on the bucket (with your storage integration), a CSV file format, external tables. */
function snowflake(base: string): string {
  // Matched against each file's path: any CSV of the folder, or its one file name (never the _state/ files).
  const pattern = (e: Exposed) => (e.file === '*.csv' ? '.*[.]csv' : `.*/${e.file.replace('.', '[.]')}`);
  return [
    `CREATE STAGE IF NOT EXISTS tracklake_stage URL = '${base}/' STORAGE_INTEGRATION = tracklake_integration; -- your integration\n` +
      `CREATE FILE FORMAT IF NOT EXISTS tracklake_csv TYPE = CSV SKIP_HEADER = 1 FIELD_OPTIONALLY_ENCLOSED_BY = '"' EMPTY_FIELD_AS_NULL = TRUE;\n`,
    ...EXPOSED.map((e) => {
      const cols = Object.entries(e.columns).map(([c, t], i) => `  ${q(c.toUpperCase())} ${TYPES.snowflake[t]} AS (value:c${i + 1}::${TYPES.snowflake[t]})`);
      if (e.metric) cols.unshift(`  "METRIC" VARCHAR AS (REGEXP_SUBSTR(METADATA$FILENAME, '([^/]+)[.]csv$', 1, 1, 'e'))`);
      return `CREATE OR REPLACE EXTERNAL TABLE ${e.table} (\n${cols.join(',\n')}\n)\nLOCATION = @tracklake_stage/${e.folder}/\nPATTERN = '${pattern(e)}'\nFILE_FORMAT = (FORMAT_NAME = 'tracklake_csv')\nAUTO_REFRESH = FALSE;\n`;
    }),
  ].join('\n');
}
