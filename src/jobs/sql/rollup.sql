-- Rolls one metric's aggregate files of a shorter period up into a longer one: values add up, and the
-- time is each key's earliest (its first day), which the overall file publishes and the others replace by
-- the period's start. Rows in byte order of (tenantid, merchantid, productid); an empty merchant is NULL
-- (an empty field) and sorts first. Reads O(periods) small files, never raw history.
SELECT
  min(time) AS time,
  tenantid,
  merchantid,
  productid,
  plain_decimal(sum(value)) AS value
FROM {{files}}
GROUP BY tenantid, merchantid, productid
HAVING sum(value) <> 0
ORDER BY tenantid, merchantid NULLS FIRST, productid
