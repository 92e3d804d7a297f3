-- Listings, their full-text index and the change log (transactional outbox).
CREATE TABLE listings (
    seq        INTEGER PRIMARY KEY,          -- rowid, shared with listings_fts
    id         TEXT    NOT NULL UNIQUE,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,             -- unix microseconds
    doc        TEXT    NOT NULL              -- the listing as JSON
);
CREATE INDEX listings_updated_at ON listings(updated_at);

-- Contentless: the text lives in listings.doc; the index holds only terms.
-- title/body carry CJK bigrams (pkg/fulltext) and words; facets carry one
-- numeric token per filter value so filters use the same index.
CREATE VIRTUAL TABLE listings_fts USING fts5(
    title, body, facets,
    content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
    op         TEXT    NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),
    listing_id TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    at         INTEGER NOT NULL,                  -- unix microseconds
    doc        TEXT    NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
-- Signs search cursors so a tampered one is refused.
INSERT INTO meta(key, value) VALUES ('cursor_key', randomblob(32));
