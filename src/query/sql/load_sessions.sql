-- Session files into `{{table}}`; load_files maps each staged file to its day.
INSERT INTO {{table}}
SELECT l.day, r.tenantid, hash(r.session_id), coalesce(r.duration, 0), coalesce(r.events, 0),
  coalesce(r.page, ''), coalesce(r.source, ''), coalesce(r.devicetype, ''), coalesce(r.bounce, false)
FROM {{files}} AS r
JOIN load_files AS l ON l.file = r.filename
WHERE r.tenantid IS NOT NULL AND r.session_id IS NOT NULL
