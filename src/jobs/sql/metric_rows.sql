-- One metric's rows for the day: a count of its events or a sum of their value, non-zero rows only,
-- in byte order of (tenantid, merchantid, productid).
SELECT
  tenantid,
  merchantid,
  productid,
  {{measure}} AS value
FROM day_events
WHERE event IN ({{events}})
GROUP BY tenantid, merchantid, productid
HAVING {{measure}} <> 0
ORDER BY tenantid, merchantid, productid;
