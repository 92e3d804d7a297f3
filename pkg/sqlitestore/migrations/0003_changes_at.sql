-- Finding the log position of a point in time (a new peer's feed starts at
-- the moment of peering) is one index lookup.
CREATE INDEX changes_at ON changes(at);
