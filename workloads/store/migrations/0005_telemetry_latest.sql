-- 0005: telemetry_latest, the newest sample of every unit, one row per (line, unit_id).
--
-- Why a table: "latest sample for every unit" answered from telemetry needs one index descent per
-- unit (a backward probe of the primary key, in every partition that may hold it). The executor spends
-- ~4.6 µs on even the cheapest such probe (an equality lookup on a known key), ~46 ms for 10,000
-- units, more than the 20 ms the product promises. With a row per unit the same question is one range
-- scan of this table's primary key (line, unit_id): ~1 ms for 10,000 units, independent of how many
-- samples telemetry holds.
--
-- How it stays right: the writer upserts the newest row per unit of each batch in the SAME transaction
-- that stores the batch in telemetry (workloads/store/writer.py `upsert_latest`, on the normal COPY
-- path and on the idempotent replay path), so it is never ahead of or behind telemetry. The upsert
-- only replaces a row with a strictly newer ts, so replaying an older spooled batch never moves a unit
-- backwards. Not a trigger: a trigger on the partitioned telemetry would turn COPY's multi-row inserts
-- into row-at-a-time work.
--
-- Retention drops telemetry partitions, not this table: a unit silent for longer than the retention
-- keeps its last sample here (it is still the newest sample the line ever produced for it).
--
-- Same columns, NOT NULLs and CHECKs as telemetry (LIKE copies them as of now; a later migration that
-- adds a column to telemetry must add it here too). fillfactor 50 leaves room on each page for the
-- next version of its rows: the key columns never change, so updates stay HOT (no index update) and
-- the table does not bloat although every row is rewritten about once a second.
CREATE TABLE telemetry_latest (
    LIKE telemetry INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS,
    PRIMARY KEY (line, unit_id)
) WITH (fillfactor = 50);

COMMENT ON TABLE telemetry_latest IS 'Newest sample per (line, unit_id), upserted with each telemetry batch in its transaction.';

-- Fill it from what telemetry already holds (empty on a new database; one pass on an upgraded one).
INSERT INTO telemetry_latest
SELECT DISTINCT ON (line, unit_id) * FROM telemetry ORDER BY line, unit_id, ts DESC;
