-- Track facts of one day: every event of the day with its universal user id, session id and sequence
-- number within the session, ordered by tenant, user, session start and sequence.
SELECT {{columns}}, s.userid, s.session_id, s.sequence
FROM sessionized AS s
JOIN events AS e ON e.rowid = s.rid
WHERE s.time >= {{day_start}} AND s.time < {{day_end}}
ORDER BY s.tenantid, s.userid, s.session_start, s.sequence
