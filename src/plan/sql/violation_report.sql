-- plan report: violations per tenant, event and type, with the counts by action taken and the earliest
-- violation of each group as its sample (ties broken by message id, so the sample is the same every run).
SELECT tenantid, event, type,
       count(*)::DOUBLE AS n,
       count(*) FILTER (action = 'block')::DOUBLE AS blocked,
       count(*) FILTER (action = 'omit')::DOUBLE AS omitted,
       arg_min(messageid, (time, messageid)) AS sample_id,
       arg_min(field, (time, messageid)) AS sample_field,
       arg_min(message, (time, messageid)) AS sample_message
FROM {{violations}}
WHERE {{tenant}} IS NULL OR tenantid = {{tenant}}
GROUP BY ALL
ORDER BY tenantid, n DESC, event, type
