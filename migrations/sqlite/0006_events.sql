-- The event outbox. Every connection event is written in the same
-- transaction as the change that caused it, then delivered from here (at
-- least once, by whichever process holds its lease) and kept for polling.
-- `seq` orders events as they were committed: writers of events take
-- turns (SQLite has one writer; Postgres writers take a transaction lock),
-- so a poller that reads past a cursor never skips a later commit.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    connection_id   TEXT NOT NULL,
    kind            TEXT NOT NULL,
    reason          TEXT,
    created_at_ms   BIGINT NOT NULL,
    -- pending, delivered, failed, or not_sent (no WEBHOOK_URL then)
    state           TEXT NOT NULL,
    -- which round of attempts this is: a redelivery starts a new one, and an
    -- attempt of an earlier round then leaves the event's state alone
    round           BIGINT NOT NULL DEFAULT 0,
    -- attempts in the current round
    tries           INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT,
    lease_until_ms  BIGINT,
    lease_owner     TEXT,
    finished_at_ms  BIGINT,
    -- what each attempt got, a line each: the time, the status code or
    -- '-', and a fixed error category or '-'; never a body
    attempts        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_due ON events (next_attempt_ms) WHERE state = 'pending';
CREATE INDEX events_by_connection ON events (connection_id, seq);
