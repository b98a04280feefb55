-- How often each event carried each of the named properties over the range ({{properties}}: a list of literals).
SELECT event, property, sum(n)::BIGINT AS n
FROM event_props
WHERE tenantid = $tenant AND day BETWEEN $from::DATE AND $to::DATE AND property IN ({{properties}})
GROUP BY ALL
