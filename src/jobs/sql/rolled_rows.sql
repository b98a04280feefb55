-- The rolled-up rows shaped as an aggregate file; {{time}} is the period's start or first_time.
SELECT
  {{time}}::BIGINT AS time,
  tenantid,
  nullif(merchantid, '') AS merchantid,
  productid,
  plain_decimal(value) AS value
FROM rolled
ORDER BY tenantid, merchantid NULLS FIRST, productid
