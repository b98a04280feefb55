-- Event flow: for sessions with the event, what came next (up to `depth` events after its first
-- occurrence), as paths (lists of events; empty when the session ends there), most common first.
WITH facts AS (
  SELECT tenantid, session_id, sequence, event FROM {{facts}} WHERE true {{tenant_filter}}
),
first_hit AS (
  SELECT tenantid, session_id, min(sequence) AS seq FROM facts WHERE event = {{event}} GROUP BY ALL
),
paths AS (
  SELECT h.tenantid, h.session_id, list(f.event ORDER BY f.sequence) FILTER (WHERE f.event IS NOT NULL) AS path
  FROM first_hit AS h
  LEFT JOIN facts AS f ON f.tenantid = h.tenantid AND f.session_id = h.session_id AND f.sequence > h.seq AND f.sequence <= h.seq + {{depth}}
  GROUP BY ALL
)
SELECT coalesce(path, []::VARCHAR[]) AS path, count(*) AS sessions
FROM paths
GROUP BY ALL
ORDER BY sessions DESC, path
LIMIT {{limit}}
