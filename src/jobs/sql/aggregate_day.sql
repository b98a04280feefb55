-- One day of tracking files, reduced to counts and value sums per (tenant, merchant, product, event).
-- Every metric of the day is then a cheap query over this small table (see metric_rows.sql).
-- A row counts when it has a product and is not a bot; an empty merchant is its own group ('').
-- `time IS NOT NULL` is not decoration: it makes DuckDB parse every row's time, so a row whose time is
-- unparseable is rejected and reported instead of being counted (unused columns are never parsed).
CREATE OR REPLACE TEMP TABLE day_events AS
SELECT
  tenantid,
  coalesce(merchantid, '') AS merchantid,
  productid,
  event,
  count(*) AS n,
  sum(value) AS total
FROM {{tracks}}
WHERE time IS NOT NULL
  AND tenantid IS NOT NULL
  AND productid IS NOT NULL
  AND bot IS DISTINCT FROM true
GROUP BY ALL;
