-- Days whose results a new alias map changes: a device that took its user id from the map on that day now
-- maps elsewhere (typically: an anonymous device was linked to an account for the first time).
SELECT DISTINCT s.day
FROM {{states}} AS s
LEFT JOIN alias_map AS a ON a.tenantid = s.tenantid AND a.deviceid = s.deviceid
WHERE s.kind = 'device' AND coalesce(a.userid, s.deviceid) <> s.userid
ORDER BY s.day
