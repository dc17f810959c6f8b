-- 0006: telemetry_latest may now be behind telemetry by a line's latestInterval (docs/telemetry-latest.md).
-- Only the table's comment changes: the upkeep moved from each batch's transaction to a keeper on its
-- own connection (workloads/simulator/latest.py), except for lines with latestInterval 0s.
COMMENT ON TABLE telemetry_latest IS 'Newest sample per (line, unit_id): never ahead of telemetry, never backwards; behind it by at most the line''s latestInterval plus one upsert (0s: in the batch''s own transaction). See docs/telemetry-latest.md.';
