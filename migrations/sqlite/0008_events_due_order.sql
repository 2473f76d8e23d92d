-- A deliverer claims the events that are due in the order they fell due
-- (their due time, then commit order), read straight off this index with
-- no sort: it reads about as many entries as it claims, however many
-- delivered events the outbox keeps.
DROP INDEX events_due;
CREATE INDEX events_due ON events (next_attempt_ms, seq) WHERE state = 'pending';
