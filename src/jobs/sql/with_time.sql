-- A period's public file: its state file with each row's time (the key's first day) set to the period's
-- start, every other field as it is (read as text, so a value keeps its exact digits). DuckDB wrote the
-- state and writes this, with the same quoting; rows keep their order.
SELECT {{time}}::BIGINT AS time, tenantid, merchantid, productid, value
FROM {{state}}
