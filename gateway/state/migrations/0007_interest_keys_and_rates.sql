-- Interests shared by every gateway replica over this state:
-- the Idempotency-Key of each POST /api/v1/interests (per principal, kept
-- 24 h), so a request sent again answers the interest it made; and the
-- arrivals of new interests from each peer in the last hour, the sliding
-- window the per-peer rate limit counts.
CREATE TABLE interest_keys (
    principal   TEXT    NOT NULL,              -- the park-local token subject
    key         TEXT    NOT NULL,              -- the Idempotency-Key header
    fingerprint TEXT    NOT NULL,              -- SHA-256 of the request, hex
    interest_id TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,              -- unix microseconds
    PRIMARY KEY (principal, key)
);
CREATE INDEX interest_keys_expiry ON interest_keys(expires_at);

CREATE TABLE interest_arrivals (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT    NOT NULL,
    at   INTEGER NOT NULL                      -- unix microseconds
);
CREATE INDEX interest_arrivals_of ON interest_arrivals(peer, at);
