-- Expressions of interest (gateway/interests): the park's sent and received
-- interests, each a JSON record the interests package owns, with the
-- columns its lists and sweeps select on; their audit trail (kept when an
-- interest is closed); the outbox of federation messages to peers,
-- delivered until the peer acknowledges; and the interest events
-- (CloudEvents JSON) the park stream and webhooks carry.
CREATE TABLE interests (
    id         TEXT    PRIMARY KEY,            -- a UUID made by the sender park
    box        TEXT    NOT NULL CHECK (box IN ('sent', 'received')),
    peer       TEXT    NOT NULL,               -- the other park
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,               -- unix microseconds
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    record     TEXT    NOT NULL                -- JSON, shaped by gateway/interests
);
CREATE INDEX interests_box ON interests(box, created_at);
CREATE INDEX interests_open ON interests(status, expires_at);

CREATE TABLE interest_audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    interest_id TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    fields      TEXT    NOT NULL DEFAULT '[]'  -- names of what crossed, never values
);
CREATE INDEX interest_audit_of ON interest_audit(interest_id, seq);

CREATE TABLE interest_outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    interest_id TEXT    NOT NULL,
    peer        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,               -- interest | status
    body        TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    last_error  TEXT    NOT NULL DEFAULT '',
    done        INTEGER NOT NULL DEFAULT 0,     -- 1: acknowledged, refused or cancelled
    created_at  INTEGER NOT NULL
);
CREATE INDEX interest_outbox_due ON interest_outbox(done, next_at);
CREATE INDEX interest_outbox_of ON interest_outbox(interest_id, done, seq);

CREATE TABLE interest_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT    NOT NULL,
    event    TEXT    NOT NULL,
    at       INTEGER NOT NULL
);
