-- One metric's daily file from day_metrics: non-zero rows, byte order of (tenantid, merchantid, productid);
-- an empty merchant is NULL (an empty field, not "") and sorts first, as '' does in byte order.
SELECT
  {{time}}::BIGINT AS time,
  tenantid,
  merchantid,
  productid,
  plain_decimal({{column}}) AS value
FROM day_metrics
WHERE {{column}} <> 0
ORDER BY tenantid, merchantid NULLS FIRST, productid
