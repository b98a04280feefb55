-- One level's state (time = each key's first day in the level's period) updated by the change of one
-- period below it, a recomputed day: `old` is what the day held, `new` what it holds now; their times lie
-- from {{start}} to {{end}}. For counts only (values are positive, so a key with a value
-- has an occurrence), and in byte order as rollup.sql writes it.
--
-- A key's first day: unchanged when it lies before the day; the day when the key is (still) in it, since
-- nothing earlier had the key; unchanged when it lies after the day and the key is not in it. When the key's
-- first day was this day and the key left it, its next day is one this merge does not read: error() ends
-- the query and the caller rolls the level up from its files.
WITH l AS (SELECT time, tenantid, coalesce(merchantid, '') AS m, productid, value FROM {{level}}),
c AS (SELECT tenantid, coalesce(merchantid, '') AS m, productid, value FROM {{old}}),
n AS (SELECT time, tenantid, coalesce(merchantid, '') AS m, productid, value FROM {{new}}),
merged AS (
  SELECT tenantid, m, productid,
    coalesce(l.value, 0) + coalesce(n.value, 0) - coalesce(c.value, 0) AS value,
    CASE
      WHEN l.time < {{start}} THEN l.time
      WHEN n.time IS NOT NULL THEN n.time
      WHEN l.time > {{end}} THEN l.time
    END AS time
  FROM l
  FULL OUTER JOIN c USING (tenantid, m, productid)
  FULL OUTER JOIN n USING (tenantid, m, productid)
)
SELECT
  coalesce(time, error('tracklake: first day unknown')) AS time,
  tenantid,
  nullif(m, '') AS merchantid,
  productid,
  plain_decimal(value) AS value
FROM merged
WHERE value <> 0
ORDER BY tenantid, merchantid NULLS FIRST, productid
