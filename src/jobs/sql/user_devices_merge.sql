-- user_devices updated by the recomputed days' change: `old` is what their state files held, `new` what they
-- hold now. Events and sessions add up. A first (last) time stays unless it came from a changed day; then
-- the new days' time takes its place only when it is no later (earlier) than it, since every unchanged
-- day's is; otherwise it lies in a day this merge does not read: error() ends the query and the caller
-- computes the state from every day's file.
WITH c AS (SELECT * FROM {{current}}),
o AS (
  SELECT tenantid, userid, deviceid, min(first_seen) AS first_seen, max(last_seen) AS last_seen, sum(events) AS events, sum(sessions) AS sessions
  FROM {{old}} WHERE kind = 'user' GROUP BY ALL
),
n AS (
  SELECT tenantid, userid, deviceid, min(first_seen) AS first_seen, max(last_seen) AS last_seen, sum(events) AS events, sum(sessions) AS sessions
  FROM {{new}} WHERE kind = 'user' GROUP BY ALL
),
merged AS (
  SELECT
    coalesce(c.tenantid, o.tenantid, n.tenantid) AS tenantid,
    coalesce(c.userid, o.userid, n.userid) AS userid,
    coalesce(c.deviceid, o.deviceid, n.deviceid) AS deviceid,
    CASE
      WHEN o.first_seen IS NULL OR c.first_seen < o.first_seen THEN least(c.first_seen, n.first_seen)
      WHEN n.first_seen <= c.first_seen THEN n.first_seen
    END AS first_seen,
    CASE
      WHEN o.last_seen IS NULL OR c.last_seen > o.last_seen THEN greatest(c.last_seen, n.last_seen)
      WHEN n.last_seen >= c.last_seen THEN n.last_seen
    END AS last_seen,
    coalesce(c.events, 0) - coalesce(o.events, 0) + coalesce(n.events, 0) AS events,
    coalesce(c.sessions, 0) - coalesce(o.sessions, 0) + coalesce(n.sessions, 0) AS sessions
  FROM c
  FULL OUTER JOIN o ON o.tenantid = c.tenantid AND o.userid = c.userid AND o.deviceid IS NOT DISTINCT FROM c.deviceid
  FULL OUTER JOIN n ON n.tenantid = coalesce(c.tenantid, o.tenantid) AND n.userid = coalesce(c.userid, o.userid)
    AND n.deviceid IS NOT DISTINCT FROM coalesce(c.deviceid, o.deviceid)
)
SELECT tenantid, userid, deviceid,
  coalesce(first_seen, error('tracklake: first or last time unknown')) AS first_seen,
  coalesce(last_seen, error('tracklake: first or last time unknown')) AS last_seen,
  events, sessions
FROM merged
WHERE events > 0
ORDER BY tenantid, userid, deviceid NULLS FIRST
