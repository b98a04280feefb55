-- Rolls aggregate files of a shorter period up into a longer one, all metrics in one pass: values add up,
-- and first_time keeps the earliest start (a key's first day), which the overall file publishes and the
-- others replace by the period's start. Reads O(periods) small files, never raw history.
-- metric_of maps each input file to its metric: VALUES ('/path/view.csv', 'view'), ...
CREATE OR REPLACE TABLE rolled AS
SELECT
  m.metric,
  f.tenantid,
  nullif(f.merchantid, '') AS merchantid,
  f.productid,
  plain_decimal(sum(f.value)) AS value,
  min(f.time) AS first_time
FROM {{files}} AS f
JOIN (VALUES {{metric_of}}) AS m(filename, metric) USING (filename)
GROUP BY m.metric, f.tenantid, f.merchantid, f.productid
HAVING sum(f.value) <> 0;
