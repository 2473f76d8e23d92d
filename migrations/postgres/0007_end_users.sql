-- Who a connection belongs to in the app (its end user) and the app's own
-- tags on it, both to find connections by.
--
-- The email is kept as given (for answers) and lowercased (for matching).
-- A connection's tags live in `connection_tags`, one row per tag, so that
-- `tag=key:value` is an index range scan; `tags` on the connection is the
-- same map as JSON, written in the same transaction, so that a page of
-- answers reads its connections in one statement. Only the store writes
-- either, always both.
ALTER TABLE connections ADD COLUMN end_user_id TEXT;
ALTER TABLE connections ADD COLUMN end_user_email TEXT;
ALTER TABLE connections ADD COLUMN end_user_email_key TEXT;
ALTER TABLE connections ADD COLUMN end_user_display_name TEXT;
ALTER TABLE connections ADD COLUMN tags TEXT;

CREATE TABLE connection_tags (
    connection_id TEXT NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (connection_id, key)
);
CREATE INDEX connection_tags_by_value ON connection_tags (key, value, connection_id);

-- Each filter of GET /connections pages in id order along one of these.
CREATE INDEX connections_by_end_user ON connections (end_user_id, id);
CREATE INDEX connections_by_email ON connections (end_user_email_key, id);
CREATE INDEX connections_by_status ON connections (status, id);
CREATE INDEX connections_by_kind ON connections (kind, id);

-- What a connect session gives the connection it makes (NULL: keeps its own).
ALTER TABLE connect_sessions ADD COLUMN end_user_id TEXT;
ALTER TABLE connect_sessions ADD COLUMN end_user_email TEXT;
ALTER TABLE connect_sessions ADD COLUMN end_user_display_name TEXT;
ALTER TABLE connect_sessions ADD COLUMN tags TEXT;

-- The connection's end user and tags as they were when the event happened.
ALTER TABLE events ADD COLUMN end_user_id TEXT;
ALTER TABLE events ADD COLUMN end_user_email TEXT;
ALTER TABLE events ADD COLUMN end_user_display_name TEXT;
ALTER TABLE events ADD COLUMN tags TEXT;
