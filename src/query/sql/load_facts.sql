-- Track facts into `{{table}}` (the columns funnels, flows and session filters read).
INSERT INTO {{table}}
SELECT l.day, r.tenantid, coalesce(r.merchantid, ''), coalesce(r.productid, ''), hash(r.session_id), r.sequence, coalesce(r.event, '')
FROM {{files}} AS r
JOIN load_files AS l ON l.file = r.filename
WHERE r.tenantid IS NOT NULL AND r.session_id IS NOT NULL AND r.sequence IS NOT NULL
