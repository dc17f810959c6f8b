-- 0002: the lines a database serves, and per-unit state (registration and quarantine).
-- Partitions are shared by every line in the database, so retention keeps the longest any line asks for.
CREATE TABLE lines (
    line        text        PRIMARY KEY CHECK (line <> ''),
    retention   interval    NOT NULL DEFAULT interval '7 days',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per unit the simulator has registered; "latest sample for every unit" drives its index
-- probes from here, and the sentinel's quarantine action sets the flag the simulator honours.
CREATE TABLE unit_state (
    line            text        NOT NULL CHECK (line <> ''),
    unit_id         integer     NOT NULL CHECK (unit_id >= 0),
    quarantined     boolean     NOT NULL DEFAULT false,
    reason          text,
    quarantined_by  text,
    quarantined_at  timestamptz,
    registered_at   timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (line, unit_id)
);

CREATE INDEX unit_state_quarantined ON unit_state (line) WHERE quarantined;
