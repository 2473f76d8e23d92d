-- Tokens and keys are stored only as sealed (authenticated, encrypted) bytes.
CREATE TABLE connections (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    status        TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    token_type    TEXT NOT NULL,
    access_token  BYTEA NOT NULL,
    refresh_token BYTEA,
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Connect sessions are kept by the SHA-256 of their token, never the token.
CREATE TABLE connect_sessions (
    token_hash    TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL,
    return_to     TEXT,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);

-- States of finished callbacks, so that a replayed callback is refused.
CREATE TABLE consumed_flow_states (
    state_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
