-- Facet counts (issue 15, item 3): each listing's facet values as one
-- short text (" sector:ai country:CN kind:project … "), in a narrow table
-- of its own so counting the matches of a search reads a few dense pages
-- per thousand matches instead of each listing's row (its JSON document
-- and rank text). Rows share the listing's rowid, like listings_fts.
CREATE TABLE listing_facets (
    rid   INTEGER PRIMARY KEY,
    codes TEXT    NOT NULL
);
-- The codes are made in Go: Open fills the table by the reindex it runs.
INSERT OR REPLACE INTO meta(key, value) VALUES ('reindex', 1);
