-- One metric's rolled-up file from `rolled`, in byte order of (tenantid, merchantid, productid); the time
-- is the period's start (a constant) or each row's first_time.
SELECT
  {{time}}::BIGINT AS time,
  tenantid,
  merchantid,
  productid,
  value
FROM rolled
WHERE metric = {{metric}}
ORDER BY tenantid, merchantid NULLS FIRST, productid
