-- A window of days' tracking rows, as the track analysis takes them: in input order (files in key order,
-- rows in file order), with a hash of the whole row that orders a user's events with equal times, so the
-- order is total and never depends on file order. Rows without a time, a tenant or any id take no part.
CREATE OR REPLACE TABLE events AS
SELECT t.*, hash({{row_columns}}) AS tiebreak
FROM {{tracks}} AS t
WHERE t.time IS NOT NULL AND t.tenantid IS NOT NULL AND coalesce(t.accountid, t.deviceid) IS NOT NULL {{bot_filter}};
