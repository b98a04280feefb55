-- Track facts of one day: every event of the day with its universal user id, session id and sequence
-- number within the session. Rows keep the input order (files in key order, rows in file order): reading
-- events and sessionized side by side preserves it, and sorting gigabytes of rows again would double the
-- job's time.
SELECT {{columns}}, s.userid, s.session_id, s.sequence
FROM events AS e
POSITIONAL JOIN sessionized AS s
WHERE s.time >= {{day_start}} AND s.time < {{day_end}}
