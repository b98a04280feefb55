-- The events page: each event's count over the range, in `buckets` equal parts of it (its sparkline).
SELECT event, (date_diff('day', $from::DATE, day) * $buckets // $days)::INTEGER AS bucket, sum(n)::BIGINT AS n
FROM event_days
WHERE tenantid = $tenant AND day BETWEEN $from::DATE AND $to::DATE
GROUP BY ALL
