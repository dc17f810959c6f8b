-- 0004: a BRIN index on telemetry.ts, so "every sample newer than the watermark" reads only the newest
-- pages of a partition rather than the whole day (the sentinel's pass; cost follows new data, not table
-- size). Samples arrive in time order, so each 16-page range covers a narrow ts span; the index is a few
-- hundred kB per day of data and costs writers next to nothing (autosummarize files the new range when
-- it fills, instead of waiting for VACUUM).
CREATE INDEX telemetry_ts_brin ON telemetry USING brin (ts) WITH (pages_per_range = 16, autosummarize = on);
