-- Which write of a connection's credential this is. A write that must not
-- overwrite another one unseen compares it, rather than the sealed bytes:
-- re-sealing the same credential under a new key (rekey) keeps it, so it is
-- not taken for another process's refresh.
ALTER TABLE connections ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
