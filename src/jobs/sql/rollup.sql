-- Rolls aggregate files of a shorter period up into a longer one: values add up, and `first_time` keeps
-- the earliest start (a key's first day), which the overall file publishes and the others replace by the
-- period's start. Reads O(periods) small files, never raw history.
CREATE OR REPLACE TEMP TABLE rolled AS
SELECT
  tenantid,
  coalesce(merchantid, '') AS merchantid,
  productid,
  sum(value) AS value,
  min(time) AS first_time
FROM {{files}}
GROUP BY ALL
HAVING sum(value) <> 0;
