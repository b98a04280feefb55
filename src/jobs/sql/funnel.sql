-- The contingent funnel: per session, step k counts when its event happens after step k-1's (by the
-- session's sequence numbers). The step CTEs s1..sN hold the sessions reaching each step with
-- the sequence at which they did.
WITH facts AS (
  SELECT tenantid, session_id, sequence, event
  FROM {{facts}}
  WHERE event IN ({{events}}) {{tenant_filter}}
),
{{step_ctes}}
SELECT {{counts}}
