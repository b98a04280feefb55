-- Numbers as tracklake's CSV rules write them: plain decimals, rounded to 10 places, no exponent, no
-- trailing zeros (59.97, 6, 0.0000001), the same as formatDecimal in src/tracking/csv.ts.
CREATE OR REPLACE MACRO plain_decimal(v) AS
  CASE
    WHEN v IS NULL THEN NULL
    WHEN CAST(v AS DOUBLE) = trunc(CAST(v AS DOUBLE)) AND abs(CAST(v AS DOUBLE)) < 1e18 THEN CAST(CAST(v AS BIGINT) AS VARCHAR)
    ELSE rtrim(rtrim(CAST(CAST(round(CAST(v AS DOUBLE), 10) AS DECIMAL(38, 10)) AS VARCHAR), '0'), '.')
  END;

-- A value as DuckDB's CSV writer writes a field: quoted (quotes doubled) when it is empty or holds a comma,
-- a quote or a line break. For CSV text built in SQL that must match files written by COPY.
CREATE OR REPLACE MACRO csv_field(v) AS
  CASE
    WHEN v = '' OR contains(v, ',') OR contains(v, '"') OR contains(v, chr(10)) OR contains(v, chr(13)) THEN '"' || replace(v, '"', '""') || '"'
    ELSE v
  END;
