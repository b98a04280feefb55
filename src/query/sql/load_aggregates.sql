-- Daily aggregate files into `agg`; load_files maps each staged file to its day and metric.
INSERT INTO agg
SELECT l.day, l.metric, r.tenantid, coalesce(r.merchantid, ''), r.productid, r.value
FROM {{files}} AS r
JOIN load_files AS l ON l.file = r.filename
WHERE r.tenantid IS NOT NULL AND r.productid IS NOT NULL AND r.value IS NOT NULL
