-- The aggregate rows of tracking files the aggregate job has not reached yet, one set per file: the same
-- rule as aggregate_day.sql (a row counts when it has a product and is not a bot), so summed over a
-- day's files they are the day's aggregate values. `metrics` is one {'metric', 'value'} struct per metric.
INSERT INTO tail_agg
SELECT key, day, m.metric, tenantid, merchantid, productid, m.value
FROM (
  SELECT l.key, l.day, t.tenantid, t.merchantid, t.productid, unnest([{{metrics}}]) AS m
  FROM (
    SELECT filename, tenantid, coalesce(merchantid, '') AS merchantid, productid,
      {{measures}}
    FROM {{tracks}}
    WHERE time IS NOT NULL AND tenantid IS NOT NULL AND productid IS NOT NULL AND bot IS DISTINCT FROM true
    GROUP BY ALL
  ) AS t
  JOIN load_files AS l ON l.file = t.filename
)
WHERE m.value IS NOT NULL AND m.value <> 0
