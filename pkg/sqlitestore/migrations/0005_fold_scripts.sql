-- Issue 14: the index text folds Traditional characters to Simplified
-- (pkg/fulltext.Fold, OpenCC's character table), so a query in either
-- script finds both. Index text is made in Go, so Open rebuilds every
-- search entry once (the 'reindex' mark), existing services' stores and
-- club-index files alike.
INSERT OR REPLACE INTO meta(key, value) VALUES ('reindex', 1);
