-- Blocked messages over the range per event (they wait in quarantine), and the days they fall on.
SELECT event, sum(messages)::BIGINT AS n, min(day)::VARCHAR AS first_day, max(day)::VARCHAR AS last_day
FROM quarantined_files
WHERE tenantid = $tenant AND day BETWEEN $from::DATE AND $to::DATE
GROUP BY event
