-- Upkeep: when the background loop should next look at a connection, who
-- is refreshing it (a lease that expires, so a dead process blocks nobody
-- for long), and what the last refresh or check found.
ALTER TABLE connections ADD COLUMN next_work_at BIGINT;
ALTER TABLE connections ADD COLUMN lease_until BIGINT;
ALTER TABLE connections ADD COLUMN lease_owner TEXT;
ALTER TABLE connections ADD COLUMN last_refreshed_at BIGINT;
ALTER TABLE connections ADD COLUMN last_checked_at BIGINT;
ALTER TABLE connections ADD COLUMN last_error TEXT;
ALTER TABLE connections ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;

-- Existing OAuth connections are looked at on the first pass (which only
-- reschedules those not due); existing keys are checked a day after their save.
UPDATE connections SET next_work_at = CASE WHEN kind = 'oauth' THEN 0 ELSE updated_at + 86400 END;

CREATE INDEX connections_next_work_at ON connections (next_work_at);
