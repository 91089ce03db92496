-- Personal API tokens for the command line and scripts (`Authorization: Bearer ...`). As with
-- sessions only the SHA-256 digest of the secret is stored; a token dies with its account.

CREATE TABLE api_tokens (
    token_id      INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    token_sha256  TEXT    NOT NULL UNIQUE,      -- hex
    created_at    TEXT    NOT NULL,
    last_used_at  TEXT,
    UNIQUE (user_id, name)
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
