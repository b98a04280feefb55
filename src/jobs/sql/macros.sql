-- Numbers as tracklake's CSV rules write them: plain decimals, rounded to 10 places, no exponent, no
-- trailing zeros (59.97, 6, 0.0000001), the same as formatDecimal in src/tracking/csv.ts.
CREATE OR REPLACE MACRO plain_decimal(v) AS
  CASE
    WHEN v IS NULL THEN NULL
    WHEN CAST(v AS DOUBLE) = trunc(CAST(v AS DOUBLE)) AND abs(CAST(v AS DOUBLE)) < 1e18 THEN CAST(CAST(v AS BIGINT) AS VARCHAR)
    ELSE rtrim(rtrim(CAST(CAST(round(CAST(v AS DOUBLE), 10) AS DECIMAL(38, 10)) AS VARCHAR), '0'), '.')
  END;

-- A session's id: a hash of (tenant, user, start), so the same input always gives the same ids. md5, not
-- DuckDB's hash(), whose values may change between DuckDB versions.
CREATE OR REPLACE MACRO session_id(tenantid, userid, session_start) AS
  substr(md5(tenantid || chr(31) || userid || chr(31) || session_start::VARCHAR), 1, 20);
