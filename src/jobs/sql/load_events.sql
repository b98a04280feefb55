-- A window of days' tracking rows, as the track analysis takes them: every row read, in input order (files
-- in key order, rows in file order), with its file (the track facts copy each file's rows and append the
-- keys row for row), a hash of the whole row that orders a user's events with equal times (so the order is
-- total and never depends on file order), and whether it takes part: rows without a time, a tenant or any
-- id do not, nor bots unless configured. Only the columns the analysis reads are kept.
CREATE OR REPLACE TABLE events AS
SELECT
  t.filename, t.time, t.tenantid, t.deviceid, t.accountid, t.event, t.page, t.url, t.referer, t.source, t.devicetype,
  hash({{row_columns}}) AS tiebreak,
  t.time IS NOT NULL AND t.tenantid IS NOT NULL AND coalesce(t.accountid, t.deviceid) IS NOT NULL {{bot_filter}} AS included
FROM {{tracks}} AS t;
