-- Session facts of the sessions that start on the day (their events may run into the next day).
-- The first event gives page, url, referer, source, devicetype and deviceid.
SELECT
  session_id,
  tenantid,
  userid,
  arg_min(deviceid, sequence) AS deviceid,
  min(time) AS start,
  max(time) AS "end",
  max(time) - min(time) AS duration,
  count(*) AS events,
  count(*) FILTER (WHERE event = 'view') AS views,
  count(*) FILTER (WHERE event = 'share') AS shares,
  count(*) FILTER (WHERE event = 'chat') AS chats,
  count(*) FILTER (WHERE event = 'order') AS orders,
  arg_min(page, sequence) AS page,
  arg_min(url, sequence) AS url,
  arg_min(referer, sequence) AS referer,
  arg_min(source, sequence) AS source,
  arg_min(devicetype, sequence) AS devicetype,
  CASE WHEN count(*) = 1 THEN 'true' ELSE 'false' END AS bounce
FROM sessionized
WHERE session_start >= {{day_start}} AND session_start < {{day_end}}
GROUP BY session_id, tenantid, userid
ORDER BY tenantid, start, session_id
