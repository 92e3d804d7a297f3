-- The gateway's state schema as the gateway created it before numbered
-- migrations (inboxSchema in gateway/inbox.go at commit a65dbed), frozen:
-- files made by that gateway look like this whatever migrations become.
CREATE TABLE IF NOT EXISTS peer_positions (
    peer          TEXT PRIMARY KEY,
    last_event_id TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS applied (
    park       TEXT NOT NULL,
    listing_id TEXT NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (park, listing_id)
);
CREATE TABLE IF NOT EXISTS inbox (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    park  TEXT NOT NULL,
    event TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id      TEXT PRIMARY KEY,
    url     TEXT NOT NULL,
    secret  TEXT NOT NULL,
    filter  TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    event      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    last_error TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
