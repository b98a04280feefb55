-- Identity stitching, per tenant: a device belongs to the account it was first seen with. Links come from
-- tracking rows that carry both ids, from identify calls (device → account) and alias calls
-- (previous id → account), and from the alias map as it stood (links only ever get earlier).
-- The earliest link wins; on a tie, the smallest account id, so the result never depends on file order.
CREATE OR REPLACE TABLE alias_map AS
WITH links AS (
  SELECT tenantid, deviceid, accountid AS userid, time
  FROM {{tracks}}
  WHERE deviceid IS NOT NULL AND accountid IS NOT NULL AND tenantid IS NOT NULL AND time IS NOT NULL {{bot_filter}}
  UNION ALL
  SELECT tenantid, deviceid, accountid, time FROM {{identities}}
  WHERE deviceid IS NOT NULL AND accountid IS NOT NULL AND tenantid IS NOT NULL AND time IS NOT NULL
  UNION ALL
  SELECT tenantid, previousid, accountid, time FROM {{identities}}
  WHERE previousid IS NOT NULL AND accountid IS NOT NULL AND tenantid IS NOT NULL AND time IS NOT NULL
  UNION ALL
  SELECT tenantid, deviceid, userid, time FROM {{previous}}
)
SELECT tenantid, deviceid, arg_min(userid, (time, userid)) AS userid, min(time) AS time
FROM links
WHERE deviceid <> userid
GROUP BY tenantid, deviceid;
