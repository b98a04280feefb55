-- What the day's results depended on and contribute, kept under sessions/_state/:
-- kind 'device': each (tenant, device) whose events took their user id from the alias map, and that id,
--   so a later run can tell whether a new link changes this day;
-- kind 'user': per (tenant, user, device) of the sessions starting this day, first and last event time,
--   events, and sessions (counted at the device of each session's first event), for the user facts.
SELECT {{day}} AS day, 'device' AS kind, tenantid, userid, deviceid, NULL::BIGINT AS first_seen, NULL::BIGINT AS last_seen, NULL::BIGINT AS events, NULL::BIGINT AS sessions
FROM sessionized
WHERE via_device AND time >= {{day_start}} AND time < {{day_end}}
GROUP BY tenantid, userid, deviceid
UNION ALL
SELECT {{day}}, 'user', tenantid, userid, deviceid, min(time), max(time), count(*), count(*) FILTER (WHERE sequence = 1)
FROM sessionized
WHERE session_start >= {{day_start}} AND session_start < {{day_end}}
GROUP BY tenantid, userid, deviceid
ORDER BY kind, tenantid, userid, deviceid NULLS FIRST
