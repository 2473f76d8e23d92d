-- API keys checked through a connect link: a link allows a few refused keys,
-- then it is used up.
ALTER TABLE connect_sessions ADD COLUMN key_attempts INTEGER NOT NULL DEFAULT 0;
