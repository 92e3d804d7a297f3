-- Issue 11: the club shares current state, not history.
--
-- 1. listings are keyed by (park, id) and carry their park and kind as
--    columns, so one file can hold many parks' listings of every kind (the
--    gateway's club index) and a walk of the table can filter on them. The
--    rowid (rid, formerly seq) of every row is kept, so listings_fts rows
--    stay attached to their listing; the facet tokens for park and kind are
--    added by a reindex that Open runs once (the 'reindex' mark below),
--    since index text is made in Go (pkg/fulltext).
-- 2. by_seq is CouchDB's by-sequence index: one row per listing ever
--    stored, holding the sequence of its latest change. A deleted listing
--    keeps a tombstone row with no content. A changes read comes from here,
--    so the change log (changes) is history that can be compacted.

CREATE TABLE listings_new (
    rid        INTEGER PRIMARY KEY,          -- rowid, shared with listings_fts
    park       TEXT    NOT NULL,             -- origin park
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,             -- unix microseconds
    doc        TEXT    NOT NULL,             -- the listing as JSON
    UNIQUE (park, id)
);
INSERT INTO listings_new(rid, park, kind, id, version, updated_at, doc)
    SELECT seq, json_extract(doc, '$.park'), json_extract(doc, '$.kind'), id, version, updated_at, doc
    FROM listings;
DROP TABLE listings;
ALTER TABLE listings_new RENAME TO listings;
CREATE INDEX listings_updated_at ON listings(updated_at);
-- Get(id) in a service's store, where ids are unique.
CREATE INDEX listings_id ON listings(id);

CREATE TABLE by_seq (
    park      TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    seq       INTEGER NOT NULL,             -- sequence of the latest change
    first_seq INTEGER NOT NULL,             -- sequence of the creation
    version   INTEGER NOT NULL,             -- tombstone: last version + 1
    deleted   INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    at        INTEGER NOT NULL,             -- unix microseconds of the latest change
    audience  TEXT    NOT NULL DEFAULT '{}', -- listing.Audience as JSON
    PRIMARY KEY (park, id)
) WITHOUT ROWID;
-- A service's changes read (one sequence for the whole file).
CREATE INDEX by_seq_seq ON by_seq(seq);
-- A club index's read of one origin (sequences are the origin's).
CREATE INDEX by_seq_origin ON by_seq(park, kind, seq);
-- SeqBefore: the position of a point in time.
CREATE INDEX by_seq_at ON by_seq(at, seq);

-- Backfill from the change log. Per listing id: the sequence of its latest
-- change, and of its creation (or its oldest change, had that been lost).
CREATE TEMP TABLE backfill_latest AS
    SELECT listing_id AS id, max(seq) AS seq,
           coalesce(min(CASE WHEN op = 'created' THEN seq END), min(seq)) AS first_seq
    FROM changes GROUP BY listing_id;

-- Who could see any version: every document the log kept (state after each
-- change, state before each update or delete) and the current one.
CREATE TEMP TABLE backfill_seen AS
    SELECT listing_id AS id, json_extract(doc, '$.visibility') AS vis, json_extract(doc, '$.share_with') AS share
    FROM changes
    UNION ALL
    SELECT listing_id, json_extract(prev_doc, '$.visibility'), json_extract(prev_doc, '$.share_with')
    FROM changes WHERE prev_doc IS NOT NULL
    UNION ALL
    SELECT id, json_extract(doc, '$.visibility'), json_extract(doc, '$.share_with') FROM listings;

CREATE TEMP TABLE backfill_audience AS
    WITH club AS (
        SELECT id, max(vis = 'club') AS club FROM backfill_seen GROUP BY id
    ), parks AS (
        SELECT id, json_group_array(park ORDER BY park) AS parks FROM (
            SELECT DISTINCT s.id AS id, p.value AS park
            FROM backfill_seen s, json_each(s.share) p
            WHERE s.vis = 'peers' AND s.share IS NOT NULL
        ) GROUP BY id
    )
    SELECT c.id AS id,
           CASE
               WHEN c.club AND p.parks IS NOT NULL THEN json_object('club', json('true'), 'parks', json(p.parks))
               WHEN c.club THEN json_object('club', json('true'))
               WHEN p.parks IS NOT NULL THEN json_object('parks', json(p.parks))
               ELSE '{}'
           END AS audience
    FROM club c LEFT JOIN parks p ON p.id = c.id;

-- Live listings at their latest change.
INSERT INTO by_seq(park, id, kind, seq, first_seq, version, deleted, at, audience)
    SELECT l.park, l.id, l.kind, t.seq, t.first_seq, l.version, 0, c.at, a.audience
    FROM listings l
    JOIN backfill_latest t ON t.id = l.id
    JOIN changes c ON c.seq = t.seq
    JOIN backfill_audience a ON a.id = l.id;

-- Deleted listings as tombstones: ids and numbers only, no content.
INSERT INTO by_seq(park, id, kind, seq, first_seq, version, deleted, at, audience)
    SELECT json_extract(c.doc, '$.park'), c.listing_id, json_extract(c.doc, '$.kind'),
           c.seq, t.first_seq, c.version, 1, c.at, a.audience
    FROM backfill_latest t
    JOIN changes c ON c.seq = t.seq
    JOIN backfill_audience a ON a.id = t.id
    WHERE c.op = 'deleted' AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.id = t.id);

DROP TABLE backfill_latest;
DROP TABLE backfill_seen;
DROP TABLE backfill_audience;

-- A club index's own bookkeeping (feed positions, backfill state), kept
-- apart from meta so a caller's key can never replace cursor_key.
CREATE TABLE index_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Open rebuilds listings_fts once: every row gains its park and kind tokens.
INSERT OR REPLACE INTO meta(key, value) VALUES ('reindex', 1);
