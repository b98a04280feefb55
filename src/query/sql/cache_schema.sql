-- The read side's local cache: the aggregate and session files of a bucket as DuckDB tables, so a query over
-- a year reads local columns, never a year of downloads. It is only a cache: a change of `version` or of
-- the storage it mirrors empties it, and everything is loaded again from the files.
CREATE TABLE IF NOT EXISTS cache_meta (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
-- What is loaded: 'agg:<day>' and 'sess:<day>' with their manifest's ETag, 'tail:<tracking file key>' with its ETag.
CREATE TABLE IF NOT EXISTS loaded (key VARCHAR PRIMARY KEY, etag VARCHAR NOT NULL);
-- Daily aggregate rows (an empty merchant is ''), from aggregates/daily/<day>/<metric>.csv.
CREATE TABLE IF NOT EXISTS agg (day DATE NOT NULL, metric VARCHAR NOT NULL, tenantid VARCHAR NOT NULL, merchantid VARCHAR NOT NULL, productid VARCHAR NOT NULL, value DOUBLE NOT NULL);
-- The same rows for days the aggregate job has not computed yet, one set per tracking file read (`src`).
CREATE TABLE IF NOT EXISTS tail_agg (src VARCHAR NOT NULL, day DATE NOT NULL, metric VARCHAR NOT NULL, tenantid VARCHAR NOT NULL, merchantid VARCHAR NOT NULL, productid VARCHAR NOT NULL, value DOUBLE NOT NULL);
-- Sessions by the day they start, from sessions/<day>/sessions.csv. Session ids are kept as their 64-bit hash
-- (only filters and funnels join on them): a third less to load. Two of a tenant's sessions colliding in a
-- year of 100 000 a day has odds of about 1 in 28 000, and would put one session in the other's filter.
CREATE TABLE IF NOT EXISTS sess (day DATE NOT NULL, tenantid VARCHAR NOT NULL, session_id UBIGINT NOT NULL, duration BIGINT NOT NULL, events BIGINT NOT NULL, landing_page VARCHAR NOT NULL, source VARCHAR NOT NULL, devicetype VARCHAR NOT NULL, bounce BOOLEAN NOT NULL);
-- The columns of the track facts that funnels, flows and session filters read.
CREATE TABLE IF NOT EXISTS facts (day DATE NOT NULL, tenantid VARCHAR NOT NULL, merchantid VARCHAR NOT NULL, productid VARCHAR NOT NULL, session_id UBIGINT NOT NULL, sequence BIGINT NOT NULL, event VARCHAR NOT NULL);
-- The same for the days after the sessions job's last day, computed here by the sessions job itself.
CREATE TABLE IF NOT EXISTS tail_sess (day DATE NOT NULL, tenantid VARCHAR NOT NULL, session_id UBIGINT NOT NULL, duration BIGINT NOT NULL, events BIGINT NOT NULL, landing_page VARCHAR NOT NULL, source VARCHAR NOT NULL, devicetype VARCHAR NOT NULL, bounce BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS tail_facts (day DATE NOT NULL, tenantid VARCHAR NOT NULL, merchantid VARCHAR NOT NULL, productid VARCHAR NOT NULL, session_id UBIGINT NOT NULL, sequence BIGINT NOT NULL, event VARCHAR NOT NULL);
-- Event names as the collector observed them (schemas/<day>/<tenant>/<node>.json, by the day received): how
-- often each was seen, per file (`src`), and the top-level property names each carried (for the conventions'
-- forbidden properties). `$identify` is identify calls.
CREATE TABLE IF NOT EXISTS event_days (src VARCHAR NOT NULL, day DATE NOT NULL, tenantid VARCHAR NOT NULL, event VARCHAR NOT NULL, n BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS event_props (src VARCHAR NOT NULL, day DATE NOT NULL, tenantid VARCHAR NOT NULL, event VARCHAR NOT NULL, property VARCHAR NOT NULL, n BIGINT NOT NULL);
-- Tracking-plan violations per violation file (violations/<day>/…csv, by the event's day), event, type and
-- action: how many, of how many messages, and the earliest one as a sample.
CREATE TABLE IF NOT EXISTS violation_files (src VARCHAR NOT NULL, day DATE NOT NULL, tenantid VARCHAR NOT NULL, event VARCHAR NOT NULL, type VARCHAR NOT NULL, action VARCHAR NOT NULL, n BIGINT NOT NULL, messages BIGINT NOT NULL, sample STRUCT("time" BIGINT, messageid VARCHAR, field VARCHAR, message VARCHAR) NOT NULL);
CREATE TABLE IF NOT EXISTS quarantined_files (src VARCHAR NOT NULL, day DATE NOT NULL, tenantid VARCHAR NOT NULL, event VARCHAR NOT NULL, messages BIGINT NOT NULL);
