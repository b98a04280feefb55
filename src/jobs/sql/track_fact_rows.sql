-- Track facts of one day: every event of the day with its universal user id, session id and sequence
-- number within the session, ordered by tenant, session and sequence.
SELECT {{columns}}, userid, session_id, sequence
FROM sessionized
WHERE time >= {{day_start}} AND time < {{day_end}}
ORDER BY tenantid, session_id, sequence
