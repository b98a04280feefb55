-- The track-fact keys of every events row, as CSV text in row order, for appending to the rows copied from
-- the tracking files (sessions/track-facts.ts): one line per row, `userid,session_id,sequence` for a row of
-- the day that takes part and an empty line for any other (a neighbour day's, a bot's, one without ids).
-- The lines are kept in pieces of 8192 rows, each ending with a newline: handing JavaScript a few large
-- strings costs a fraction of one value per row. Read them with ORDER BY piece.
CREATE OR REPLACE TABLE fact_keys AS
SELECT rid // 8192 AS piece, string_agg(line, chr(10) ORDER BY rid) || chr(10) AS lines
FROM (
  SELECT rid,
    CASE
      WHEN session_id IS NOT NULL AND time >= {{day_start}} AND time < {{day_end}} THEN csv_field(userid) || ',' || session_id || ',' || sequence
      ELSE ''
    END AS line
  FROM sessionized
)
GROUP BY piece;
