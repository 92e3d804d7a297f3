-- Restores of the park's stores (parkmesh restore): per kind, the
-- sequences the restored log never issued. A feed position among them was
-- read from a history the restore undid, so the feeds refuse it (409) and
-- the reader copies the park afresh.
CREATE TABLE feed_restarts (
    kind      TEXT    NOT NULL,
    after_seq INTEGER NOT NULL, -- the backup's LastSeq: positions up to it stay valid
    base_seq  INTEGER NOT NULL, -- the log goes on at base_seq + 1
    at        INTEGER NOT NULL, -- unix microseconds
    PRIMARY KEY (kind, base_seq)
);
