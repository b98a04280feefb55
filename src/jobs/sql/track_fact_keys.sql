-- The track-fact keys of every events row, in row order, for appending to the rows copied from the tracking
-- files (sessions/track-facts.ts): userid, session_id and sequence for a row of the day that takes part, and
-- three empty fields for any other (a neighbour day's, a bot's, one without ids). sessionized is in row
-- order, and so is a scan of it.
SELECT
  CASE WHEN fact THEN userid END AS userid,
  CASE WHEN fact THEN session_id(tenantid, userid, session_start) END AS session_id,
  CASE WHEN fact THEN sequence END AS sequence
FROM (
  SELECT *, session_start IS NOT NULL AND time >= {{day_start}} AND time < {{day_end}} AS fact
  FROM sessionized
)
