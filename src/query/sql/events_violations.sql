-- Violations over the range per event, type and action, with the earliest as a sample.
SELECT event, type, action, n, messages, s."time" AS sample_time, s.messageid AS sample_id, s.field AS sample_field, s.message AS sample_message
FROM (
  SELECT event, type, action, sum(n)::BIGINT AS n, sum(messages)::BIGINT AS messages, min(sample) AS s
  FROM violation_files
  WHERE tenantid = $tenant AND day BETWEEN $from::DATE AND $to::DATE
  GROUP BY ALL
)
