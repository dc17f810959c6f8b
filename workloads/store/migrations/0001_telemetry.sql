-- 0001: the wide telemetry table, partitioned by day on ts.
-- The primary key (line, unit_id, ts) makes every write idempotent and, scanned backwards,
-- is the index that serves "latest sample per unit" (one O(log n) descent per unit and partition).
CREATE TABLE telemetry (
    line       text             NOT NULL CHECK (line <> ''),
    unit_id    integer          NOT NULL CHECK (unit_id >= 0),
    cycle      integer          NOT NULL,
    ts         timestamptz      NOT NULL,
    setting_1  double precision NOT NULL,
    setting_2  double precision NOT NULL,
    setting_3  double precision NOT NULL,
    t2         double precision NOT NULL,
    t24        double precision NOT NULL,
    t30        double precision NOT NULL,
    t50        double precision NOT NULL,
    p2         double precision NOT NULL,
    p15        double precision NOT NULL,
    p30        double precision NOT NULL,
    nf         double precision NOT NULL,
    nc         double precision NOT NULL,
    epr        double precision NOT NULL,
    ps30       double precision NOT NULL,
    phi        double precision NOT NULL,
    nrf        double precision NOT NULL,
    nrc        double precision NOT NULL,
    bpr        double precision NOT NULL,
    farb       double precision NOT NULL,
    htbleed    double precision NOT NULL,
    nf_dmd     double precision NOT NULL,
    pcnfr_dmd  double precision NOT NULL,
    w31        double precision NOT NULL,
    w32        double precision NOT NULL,
    PRIMARY KEY (line, unit_id, ts)
) PARTITION BY RANGE (ts);

COMMENT ON TABLE telemetry IS 'One row per tester per sample: 3 operating settings and the 21 C-MAPSS channels (Saxena et al. 2008).';
COMMENT ON COLUMN telemetry.t2 IS 'sensor 1 T2: Total temperature at fan inlet (°R)';
COMMENT ON COLUMN telemetry.t24 IS 'sensor 2 T24: Total temperature at LPC outlet (°R)';
COMMENT ON COLUMN telemetry.t30 IS 'sensor 3 T30: Total temperature at HPC outlet (°R)';
COMMENT ON COLUMN telemetry.t50 IS 'sensor 4 T50: Total temperature at LPT outlet (°R)';
COMMENT ON COLUMN telemetry.p2 IS 'sensor 5 P2: Pressure at fan inlet (psia)';
COMMENT ON COLUMN telemetry.p15 IS 'sensor 6 P15: Total pressure in bypass-duct (psia)';
COMMENT ON COLUMN telemetry.p30 IS 'sensor 7 P30: Total pressure at HPC outlet (psia)';
COMMENT ON COLUMN telemetry.nf IS 'sensor 8 Nf: Physical fan speed (rpm)';
COMMENT ON COLUMN telemetry.nc IS 'sensor 9 Nc: Physical core speed (rpm)';
COMMENT ON COLUMN telemetry.epr IS 'sensor 10 epr: Engine pressure ratio (P50/P2) (-)';
COMMENT ON COLUMN telemetry.ps30 IS 'sensor 11 Ps30: Static pressure at HPC outlet (psia)';
COMMENT ON COLUMN telemetry.phi IS 'sensor 12 phi: Ratio of fuel flow to Ps30 (pps/psi)';
COMMENT ON COLUMN telemetry.nrf IS 'sensor 13 NRf: Corrected fan speed (rpm)';
COMMENT ON COLUMN telemetry.nrc IS 'sensor 14 NRc: Corrected core speed (rpm)';
COMMENT ON COLUMN telemetry.bpr IS 'sensor 15 BPR: Bypass ratio (-)';
COMMENT ON COLUMN telemetry.farb IS 'sensor 16 farB: Burner fuel-air ratio (-)';
COMMENT ON COLUMN telemetry.htbleed IS 'sensor 17 htBleed: Bleed enthalpy (-)';
COMMENT ON COLUMN telemetry.nf_dmd IS 'sensor 18 Nf_dmd: Demanded fan speed (rpm)';
COMMENT ON COLUMN telemetry.pcnfr_dmd IS 'sensor 19 PCNfR_dmd: Demanded corrected fan speed (rpm)';
COMMENT ON COLUMN telemetry.w31 IS 'sensor 20 W31: HPT coolant bleed (lbm/s)';
COMMENT ON COLUMN telemetry.w32 IS 'sensor 21 W32: LPT coolant bleed (lbm/s)';

-- Daily partitions, made ahead by dynoline_ensure_partitions. An advisory lock makes concurrent
-- callers (several simulator shards) safe: CREATE TABLE IF NOT EXISTS alone races in the catalogue.
CREATE FUNCTION dynoline_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date := (from_ts AT TIME ZONE 'UTC')::date;
    last_day date := (to_ts AT TIME ZONE 'UTC')::date;
    made integer := 0;
    part text;
BEGIN
    IF last_day - day > 3660 THEN
        RAISE EXCEPTION 'refusing to create % daily partitions at once', last_day - day;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('dynoline.telemetry.partitions'));
    WHILE day <= last_day LOOP
        part := format('telemetry_p%s', to_char(day, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF telemetry FOR VALUES FROM (%L) TO (%L)',
                part, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
            made := made + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN made;
END $$;

-- Drops whole partitions that lie entirely before the cutoff: retention without DELETE or VACUUM.
CREATE FUNCTION dynoline_drop_partitions_before(cutoff timestamptz)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('dynoline.telemetry.partitions'));
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'telemetry'::regclass
          AND c.relname ~ '^telemetry_p[0-9]{8}$'
          AND ((to_date(substr(c.relname, 12), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC') <= cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END $$;
