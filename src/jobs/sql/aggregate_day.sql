-- One day of tracking files, reduced in a single scan to one column per metric (the measures slot: a
-- count(*) or sum(value) FILTERed to the metric's events) per (tenant, merchant, product).
-- A row counts when it has a product and is not a bot; an empty merchant is its own group ('').
-- `time IS NOT NULL` is not decoration: it makes DuckDB parse every row's time, so a row whose time is
-- unparseable is rejected and reported instead of being counted (unused columns are never parsed).
CREATE OR REPLACE TABLE day_metrics AS
SELECT
  tenantid,
  nullif(coalesce(merchantid, ''), '') AS merchantid,
  productid,
  {{measures}}
FROM {{tracks}}
WHERE time IS NOT NULL
  AND tenantid IS NOT NULL
  AND productid IS NOT NULL
  AND bot IS DISTINCT FROM true
GROUP BY ALL;
