-- A batch of violation files, summed per file, event, type and action. The sample is the earliest violation
-- (ties broken by message id, field and text, so a reload picks the same one).
INSERT INTO violation_files
SELECT l.key, l.day, v.tenantid, v.event, v.type, v.action, count(*), count(DISTINCT v.messageid),
  min({'time': v.time, 'messageid': v.messageid, 'field': coalesce(v.field, ''), 'message': coalesce(v.message, '')})
FROM {{violations}} AS v
JOIN load_files AS l ON l.file = v.filename
WHERE v.tenantid IS NOT NULL AND v.event IS NOT NULL AND v.type IS NOT NULL AND v.action IS NOT NULL AND v.time IS NOT NULL
GROUP BY ALL;

-- The blocked messages among them (every violation of a blocked message says `block`): what waits in quarantine.
INSERT INTO quarantined_files
SELECT l.key, l.day, v.tenantid, v.event, count(DISTINCT v.messageid)
FROM {{violations}} AS v
JOIN load_files AS l ON l.file = v.filename
WHERE v.action = 'block' AND v.tenantid IS NOT NULL AND v.event IS NOT NULL
GROUP BY ALL
