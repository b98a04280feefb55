-- User facts over the whole history, from each day's small 'user' state rows (O(days), never raw events).
SELECT
  tenantid,
  userid,
  min(first_seen) AS first_seen,
  max(last_seen) AS last_seen,
  sum(sessions) AS sessions,
  sum(events) AS events,
  count(DISTINCT deviceid) AS devices
FROM {{states}}
WHERE kind = 'user'
GROUP BY tenantid, userid
ORDER BY tenantid, userid
