-- Session facts of the sessions that start on the day (their events may run into the next day).
-- The first event (sequence 1) gives page, url, referer, source, devicetype and deviceid.
WITH day_sessions AS (
  SELECT tenantid, userid, session_start, time, event
  FROM sessionized
  WHERE session_start >= {{day_start}} AND session_start < {{day_end}}
),
totals AS (
  SELECT
    tenantid, userid, session_start,
    min(time) AS start,
    max(time) AS "end",
    count(*) AS events,
    count(*) FILTER (WHERE event = 'view') AS views,
    count(*) FILTER (WHERE event = 'share') AS shares,
    count(*) FILTER (WHERE event = 'chat') AS chats,
    count(*) FILTER (WHERE event = 'order') AS orders
  FROM day_sessions
  GROUP BY tenantid, userid, session_start
),
firsts AS (
  -- A hash join on the day's first events only: the build side is one row per session.
  SELECT s.tenantid, s.userid, s.session_start, s.deviceid, e.page, e.url, e.referer, e.source, e.devicetype
  FROM events AS e
  JOIN (SELECT * FROM sessionized WHERE sequence = 1 AND session_start >= {{day_start}} AND session_start < {{day_end}}) AS s ON e.rowid = s.rid
)
SELECT
  session_id(f.tenantid, f.userid, f.session_start) AS session_id, f.tenantid, f.userid, f.deviceid,
  t.start, t."end", t."end" - t.start AS duration,
  t.events, t.views, t.shares, t.chats, t.orders,
  f.page, f.url, f.referer, f.source, f.devicetype,
  CASE WHEN t.events = 1 THEN 'true' ELSE 'false' END AS bounce
FROM firsts AS f
JOIN totals AS t USING (tenantid, userid, session_start)
ORDER BY f.tenantid, t.start, session_id
