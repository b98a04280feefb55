-- When the collector first and last received each event, over every loaded day; an event never observed
-- (a call type the schemas do not count) by its violations' days instead.
WITH observed AS (
  SELECT event, min(day) AS first_seen, max(day) AS last_seen FROM event_days WHERE tenantid = $tenant GROUP BY event
), violated AS (
  SELECT event, min(day) AS first_seen, max(day) AS last_seen FROM violation_files WHERE tenantid = $tenant GROUP BY event
)
SELECT event, first_seen::VARCHAR AS first_seen, last_seen::VARCHAR AS last_seen FROM observed
UNION ALL
SELECT event, first_seen::VARCHAR, last_seen::VARCHAR FROM violated WHERE event NOT IN (SELECT event FROM observed)
