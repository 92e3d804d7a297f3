-- The club index (club-index.db, gateway/clubindex) now holds the peers'
-- listings in their current state and where this gateway stands in each
-- peer's feed. The inbox of full peer events (every past version of every
-- listing) and its bookkeeping go away: no earlier version of a listing is
-- kept here. A gateway upgraded from the inbox copies each peer afresh.
DROP TABLE IF EXISTS inbox;
DROP TABLE IF EXISTS applied;
DROP TABLE IF EXISTS peer_positions;
