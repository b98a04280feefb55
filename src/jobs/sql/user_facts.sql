-- User facts over the whole history, from user_devices (one row per user and device, never raw events).
SELECT
  tenantid,
  userid,
  min(first_seen) AS first_seen,
  max(last_seen) AS last_seen,
  sum(sessions) AS sessions,
  sum(events) AS events,
  count(DISTINCT deviceid) AS devices
FROM {{devices}}
GROUP BY tenantid, userid
ORDER BY tenantid, userid
