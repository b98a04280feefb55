-- Sessions over a window of days (the day and its two neighbours), from the events load_events.sql loaded.
-- 1. Every event gets its universal user id: the account id when the row has one, else the device's
--    account from the alias map, else the device id.
-- 2. Per (tenant, user), events in time order; equal times are ordered by a hash of the whole row, so the
--    order never depends on file order; rows equal in every column (the same event logged twice) keep
--    their input order, so their sequence numbers never depend on DuckDB's threads. idle = time since the
--    user's previous event.
-- 3. A run of activity starts at a user's first event and whenever idle is strictly greater than the
--    inactivity limit; a session running 24 hours is closed and the next event starts a new one (a longer
--    run is cut into 24-hour pieces from its first event). A session is a run, or a piece of a long one.
-- 4. A session is known by (tenant, user, start); its id is a hash of those (the session_id macro),
--    computed where an output needs it, not here for every row. Sequence numbers count from 1 within the
--    session.
-- The windows run over a narrow projection (rid, tenant, user, time, tie-break): sorting whole rows
-- several times would cost more than the rest of the job. `events` keeps the rows in input order, and
-- `sessionized` has one row per events row in the same order (rid is the events rowid; rows that take no
-- part have no keys), so the track facts append a file's keys to its rows in order, with no join.
CREATE OR REPLACE TABLE sessionized AS
WITH mapped AS (
  -- The alias lookup joins the narrow projection only: carrying whole rows through a join costs seconds.
  SELECT e.rowid AS rid, e.tenantid, coalesce(e.accountid, a.userid, e.deviceid) AS userid, e.time, e.tiebreak,
    e.event, e.deviceid, e.accountid IS NULL AND e.deviceid IS NOT NULL AS via_device
  FROM events AS e
  LEFT JOIN alias_map AS a ON a.tenantid = e.tenantid AND a.deviceid = e.deviceid
  WHERE e.included
),
layer1 AS (
  SELECT *,
    row_number() OVER by_user AS rn,
    coalesce(time - lag(time) OVER by_user > {{inactivity_ms}}, true) AS new_gap
  FROM mapped
  WINDOW by_user AS (PARTITION BY tenantid, userid ORDER BY time, tiebreak, rid)
),
layer2 AS MATERIALIZED (
  SELECT *, (time - gap_start) // 86400000 AS piece
  FROM (
    SELECT *,
      max(CASE WHEN new_gap THEN time END) OVER running AS gap_start,
      max(CASE WHEN new_gap THEN rn END) OVER running AS gap_rn
    FROM layer1
    WINDOW running AS (PARTITION BY tenantid, userid ORDER BY time, tiebreak, rid ROWS UNBOUNDED PRECEDING)
  )
),
-- A run of activity longer than 24 hours is cut into 24-hour pieces from its first event: piece 0 starts
-- with the run, and each later piece at its own first event. Such runs are rare, so only their rows go
-- through this grouping and join; every other row's session is its run.
pieces AS (
  SELECT tenantid, userid, gap_start, piece, min(time) AS piece_start, min(rn) AS piece_rn
  FROM layer2
  WHERE piece > 0
  GROUP BY ALL
),
layer4 AS (
  SELECT *, gap_start AS session_start, gap_rn AS start_rn FROM layer2 WHERE piece = 0
  UNION ALL
  SELECT l.*, p.piece_start, p.piece_rn
  FROM layer2 AS l
  JOIN pieces AS p ON p.tenantid = l.tenantid AND p.userid = l.userid AND p.gap_start = l.gap_start AND p.piece = l.piece
  WHERE l.piece > 0
)
SELECT
  rid, tenantid, userid, time, event, deviceid, via_device, session_start,
  rn - start_rn + 1 AS sequence
FROM layer4
UNION ALL
-- Rows that take no part keep their place, without keys, so sessionized lines up with events row for row.
SELECT rowid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM events
WHERE NOT included
ORDER BY rid;
