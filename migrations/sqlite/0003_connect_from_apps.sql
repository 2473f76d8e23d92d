-- Connecting from inside an app: a session may answer a popup opened by an
-- app on its own origin, and remembers how its connect ended so that the app
-- can ask (`GET /connect-sessions/status`).
ALTER TABLE connect_sessions ADD COLUMN popup_origin TEXT;
ALTER TABLE connect_sessions ADD COLUMN outcome TEXT;
ALTER TABLE connect_sessions ADD COLUMN outcome_kind TEXT;
