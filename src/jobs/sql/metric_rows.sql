-- One metric's rows for the day: a count of its events or a sum of their value, non-zero rows only,
-- in byte order of (tenantid, merchantid, productid), shaped as the aggregate file. An empty merchant is
-- written as NULL (an empty field, not "") and sorts first, as the empty string does in byte order.
SELECT
  {{time}}::BIGINT AS time,
  tenantid,
  nullif(merchantid, '') AS merchantid,
  productid,
  plain_decimal({{measure}}) AS value
FROM day_events
WHERE event IN ({{events}})
GROUP BY tenantid, merchantid, productid
HAVING {{measure}} <> 0
ORDER BY tenantid, merchantid NULLS FIRST, productid
