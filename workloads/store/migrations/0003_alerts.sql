-- 0003: sentinel alerts, per-rule watermarks, per-unit drift baselines.

-- One row per alert episode of a rule on a unit. Sample times (*_sample_ts) come from the telemetry,
-- wall-clock times (*_at) from the sentinel pass, so a replay of old data still reads sensibly.
CREATE TABLE alerts (
    id                  bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule                text             NOT NULL CHECK (rule <> ''),
    line                text             NOT NULL CHECK (line <> ''),
    unit_id             integer          NOT NULL CHECK (unit_id >= 0),
    severity            text             NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    kind                text             NOT NULL,
    statistic           text             NOT NULL,
    action              text             NOT NULL CHECK (action IN ('none', 'quarantine')),
    first_sample_ts     timestamptz      NOT NULL,
    last_sample_ts      timestamptz      NOT NULL,
    worst_value         double precision NOT NULL,
    hits                bigint           NOT NULL CHECK (hits >= 1),
    evaluated_to        timestamptz      NOT NULL,
    resolved_sample_ts  timestamptz,
    opened_at           timestamptz      NOT NULL DEFAULT now(),
    last_seen_at        timestamptz      NOT NULL DEFAULT now(),
    resolved_at         timestamptz,
    evidence            jsonb            NOT NULL DEFAULT '{}'::jsonb,
    CHECK (last_sample_ts >= first_sample_ts),
    CHECK ((resolved_at IS NULL) = (resolved_sample_ts IS NULL))
);

COMMENT ON COLUMN alerts.statistic IS 'what worst_value measures, e.g. T50, change(T50, 60s), z(Ps30), hi(fd001-health)';
COMMENT ON COLUMN alerts.hits IS 'samples (threshold, sustained) or passes (windowed kinds) at which the condition held';
COMMENT ON COLUMN alerts.evaluated_to IS 'upper bound of the newest pass that updated this alert; a replay of older windows leaves it alone';

-- The lifecycle's invariant: at most one open alert per (rule, line, unit).
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule, line, unit_id) WHERE resolved_at IS NULL;
-- Latest episode of a rule on a unit (replay guard), and a line's recent alerts (dynoline alerts).
CREATE INDEX alerts_by_unit ON alerts (line, unit_id, rule, last_sample_ts DESC);
CREATE INDEX alerts_recent ON alerts (line, first_sample_ts DESC);

-- How far each rule has evaluated each line: the next pass reads only samples after it.
CREATE TABLE sentinel_watermarks (
    rule          text        NOT NULL CHECK (rule <> ''),
    line          text        NOT NULL CHECK (line <> ''),
    evaluated_to  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, line)
);

-- A unit's early-life baseline (drift rules): mean and standard deviation of each sensor over the first
-- `samples` samples of the unit's current life. A life starts at the unit's first sample or at a sample
-- with cycle 1 (a looping C-MAPSS replay starts a new engine there); means/sds stay NULL until the life
-- has `samples` samples. Sensors are in catalogue order (t2 … w32).
CREATE TABLE sentinel_baselines (
    line         text               NOT NULL CHECK (line <> ''),
    unit_id      integer            NOT NULL CHECK (unit_id >= 0),
    samples      integer            NOT NULL CHECK (samples >= 2),
    life_start   timestamptz        NOT NULL,
    means        double precision[],
    sds          double precision[],
    computed_at  timestamptz,
    PRIMARY KEY (line, unit_id, samples),
    CHECK ((means IS NULL) = (sds IS NULL))
);
