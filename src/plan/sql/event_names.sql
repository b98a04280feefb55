-- plan lint: how often each tenant's tracking rows carry each event name (the names as the collector wrote
-- them: trimmed, lower case, mapped to the canonical names).
SELECT tenantid, event, count(*)::DOUBLE AS n
FROM {{tracks}}
WHERE {{tenant}} IS NULL OR tenantid = {{tenant}}
GROUP BY ALL
ORDER BY tenantid, event
