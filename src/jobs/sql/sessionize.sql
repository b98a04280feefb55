-- Mapped tracks and sessions over a window of days (the day and its two neighbours).
-- 1. Every event gets its universal user id: the account id when the row has one, else the device's
--    account from the alias map, else the device id.
-- 2. Per (tenant, user), events in time order (ties broken by every column, so the order is total);
--    idle = time since the user's previous event.
-- 3. A session starts at a user's first event and whenever idle is strictly greater than the inactivity
--    limit; a session running 24 hours is closed and the next event starts a new one (a longer run of
--    activity is cut into 24-hour pieces from its first event).
-- 4. session_id is a hash of (tenant, user, start), so the same input always gives the same ids.
CREATE OR REPLACE TEMP TABLE sessionized AS
WITH mapped AS (
  SELECT t.*, coalesce(t.accountid, a.userid, t.deviceid) AS userid, t.accountid IS NULL AND t.deviceid IS NOT NULL AS via_device
  FROM {{tracks}} AS t
  LEFT JOIN alias_map AS a ON a.tenantid = t.tenantid AND a.deviceid = t.deviceid
  WHERE t.time IS NOT NULL AND t.tenantid IS NOT NULL AND coalesce(t.accountid, t.deviceid) IS NOT NULL {{bot_filter}}
),
ordered AS (
  SELECT *, time - lag(time) OVER by_user AS idle
  FROM mapped
  WINDOW by_user AS (PARTITION BY tenantid, userid ORDER BY {{order}})
),
gapped AS (
  SELECT *, sum(CASE WHEN idle IS NULL OR idle > {{inactivity_ms}} THEN 1 ELSE 0 END)
              OVER (PARTITION BY tenantid, userid ORDER BY {{order}} ROWS UNBOUNDED PRECEDING) AS gap_no
  FROM ordered
),
pieced AS (
  SELECT *, (time - min(time) OVER (PARTITION BY tenantid, userid, gap_no)) // 86400000 AS piece
  FROM gapped
),
started AS (
  SELECT *, min(time) OVER (PARTITION BY tenantid, userid, gap_no, piece) AS session_start
  FROM pieced
)
SELECT
  * EXCLUDE (idle, gap_no, piece),
  substr(md5(tenantid || chr(31) || userid || chr(31) || session_start::VARCHAR), 1, 20) AS session_id,
  row_number() OVER (PARTITION BY tenantid, userid, session_start ORDER BY {{order}}) AS sequence
FROM started;
