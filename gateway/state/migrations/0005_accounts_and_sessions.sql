-- Park staff accounts and their portal sessions (issue 15). A password is
-- kept only as its argon2id hash in PHC form (the salt and the parameters
-- travel with it, so they can change without invalidating old hashes).
-- Users from the park's OpenID Connect provider have no password hash.
-- A session row is keyed by the SHA-256 of the session id, never the id:
-- a copy of this file does not sign anyone in (CSRF tokens are derived
-- from the session id, so they are not stored either). Times are Unix
-- microseconds.
CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL DEFAULT '', -- '' for accounts without a password (OIDC)
    disabled      INTEGER NOT NULL DEFAULT 0,
    lang          TEXT NOT NULL DEFAULT 'zh',
    oidc_subject  TEXT,                     -- issuer + " " + sub, for OIDC accounts
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_oidc_subject ON users(oidc_subject) WHERE oidc_subject IS NOT NULL;
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    username    TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    method      TEXT NOT NULL,   -- password or oidc
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL -- absolute expiry
);
CREATE INDEX sessions_user ON sessions(username);
CREATE INDEX sessions_expires ON sessions(expires_at);
-- Failed sign-ins, per key ("user:<name>" or "addr:<ip or /64>"): the
-- failures in the current window and when the window started.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER NOT NULL DEFAULT 0
);
