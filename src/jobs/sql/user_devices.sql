-- Per (tenant, user, device) over the whole history, from each day's 'user' state rows: the state the user
-- facts are computed from, kept under users/_state/ so a night updates it by the days' change instead of
-- re-reading every day's state.
SELECT tenantid, userid, deviceid, min(first_seen) AS first_seen, max(last_seen) AS last_seen, sum(events) AS events, sum(sessions) AS sessions
FROM {{states}}
WHERE kind = 'user'
GROUP BY tenantid, userid, deviceid
ORDER BY tenantid, userid, deviceid NULLS FIRST
