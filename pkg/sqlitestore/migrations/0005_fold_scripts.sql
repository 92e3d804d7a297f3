-- Issue 14: search quality.
-- 1. The index text folds Traditional characters to Simplified
--    (pkg/fulltext.Fold, OpenCC's character table), so a query in either
--    script finds both.
-- 2. Each listing keeps its text as ranking reads it (rank_text: title,
--    body and vocabulary codes, normalised by pkg/fulltext), so a text
--    search scores its candidates without decoding them.
-- Index text is made in Go, so Open rebuilds every search entry and
-- rank_text once (the 'reindex' mark), in existing services' stores and
-- club-index files alike.
ALTER TABLE listings ADD COLUMN rank_text TEXT NOT NULL DEFAULT '';
INSERT OR REPLACE INTO meta(key, value) VALUES ('reindex', 1);
