-- Login sessions of user accounts. The cookie holds a random token; only its SHA-256 digest is
-- stored, so a copy of the database does not let anyone log in.

CREATE TABLE sessions (
    session_id    INTEGER PRIMARY KEY,
    token_sha256  TEXT    NOT NULL UNIQUE,      -- hex
    user_id       INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at    TEXT    NOT NULL,
    expires_at    TEXT    NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
