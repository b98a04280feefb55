-- Track facts of one day, rows [lo, hi) of events: every event of the day with its universal user id,
-- session id and sequence number within the session. Rows keep the input order (files in key order, rows
-- in file order): reading events and sessionized side by side preserves it, and sorting gigabytes of rows
-- again would double the job's time. The same range of both tables lines up row for row (sessionized is
-- ordered by rid, the events rowid), so disjoint ranges can be written at once and joined end to end.
SELECT {{columns}}, s.userid, s.session_id, s.sequence
FROM (SELECT * FROM events WHERE rowid >= {{lo}} AND rowid < {{hi}}) AS e
POSITIONAL JOIN (SELECT * FROM sessionized WHERE rid >= {{lo}} AND rid < {{hi}}) AS s
WHERE s.time >= {{day_start}} AND s.time < {{day_end}}
