-- Track facts of one tracking file rendered from its parsed rows: the fallback for a file whose records the
-- byte copy could not line up with DuckDB's reading (sessions/track-facts.ts). {{rows}} reads the file
-- skipping malformed rows, as loading it did, so its rows are events[lo, hi) in the same order, and the
-- matching range of sessionized (ordered by rid) lines up row for row.
SELECT t.*, s.userid, session_id(s.tenantid, s.userid, s.session_start) AS session_id, s.sequence
FROM {{rows}} AS t
POSITIONAL JOIN (SELECT * FROM sessionized WHERE rid >= {{lo}} AND rid < {{hi}}) AS s
WHERE s.session_start IS NOT NULL AND s.time >= {{day_start}} AND s.time < {{day_end}}
