-- Park-local tokens: every token issued (by `parkmesh token create` or the
-- park API) is recorded, so staff can be shown and revoke them one by one;
-- the token itself is never stored, only what it says. A revocation is a
-- row of its own, so an id that was never recorded (a token issued
-- elsewhere, whose jti is known from a log) can be revoked too. Times are
-- Unix microseconds.
CREATE TABLE local_tokens (
    id         TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    role       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX local_tokens_expires ON local_tokens(expires_at);
CREATE TABLE token_revocations (
    id         TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL,
    -- when the token expires anyway, after which the revocation is moot
    expires_at INTEGER NOT NULL
);
CREATE INDEX token_revocations_expires ON token_revocations(expires_at);
