package state

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Signal returns a channel closed when a peer event is applied.
func (db *DB) Signal() <-chan struct{} {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.signal
}

func (db *DB) notify() {
	db.mu.Lock()
	close(db.signal)
	db.signal = make(chan struct{})
	db.mu.Unlock()
}

// Position returns the last event id applied from peer ("" if none).
func (db *DB) Position(ctx context.Context, peer string) (string, error) {
	var id string
	err := db.read.QueryRowContext(ctx, `SELECT last_event_id FROM peer_positions WHERE peer = ?`, peer).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

const upsertPosition = `INSERT INTO peer_positions(peer, last_event_id, updated_at) VALUES (?, ?, ?)
	ON CONFLICT(peer) DO UPDATE SET last_event_id = excluded.last_event_id, updated_at = excluded.updated_at`

// SetPosition records where the gateway stands in peer's feed (the stream's
// announced start), without an event.
func (db *DB) SetPosition(ctx context.Context, peer, id string) error {
	_, err := db.write.ExecContext(ctx, upsertPosition, peer, id, time.Now().UnixMicro())
	return err
}

// ResetPosition forgets where the gateway stands in peer's feed.
func (db *DB) ResetPosition(ctx context.Context, peer string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM peer_positions WHERE peer = ?`, peer)
	return err
}

// Apply records one event of peer's feed, idempotently by (park, listing
// id, version): an event at or below the version already applied only
// moves the position. The position and the event commit together, so a
// crash never loses nor doubles one. It reports whether the event was new.
func (db *DB) Apply(ctx context.Context, peer, eventID string, listingID string, version int64, ev []byte) (bool, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	now := time.Now().UnixMicro()
	var have int64
	err = tx.QueryRowContext(ctx, `SELECT version FROM applied WHERE park = ? AND listing_id = ?`, peer, listingID).Scan(&have)
	fresh := errors.Is(err, sql.ErrNoRows) || (err == nil && version > have)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if fresh {
		if _, err := tx.ExecContext(ctx, `INSERT INTO applied(park, listing_id, version) VALUES (?, ?, ?)
			ON CONFLICT(park, listing_id) DO UPDATE SET version = excluded.version`, peer, listingID, version); err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO inbox(park, event, at) VALUES (?, ?, ?)`, peer, string(ev), now); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, upsertPosition, peer, eventID, now); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	if fresh {
		db.notify()
	}
	return fresh, nil
}

// Applied is one peer event applied here, as the peer sent it.
type Applied struct {
	Seq   int64
	Park  string
	Event []byte // CloudEvents JSON
}

// After returns up to limit applied events after seq.
func (db *DB) After(ctx context.Context, seq int64, limit int) ([]Applied, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, park, event FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Applied
	for rows.Next() {
		var e Applied
		var raw string
		if err := rows.Scan(&e.Seq, &e.Park, &raw); err != nil {
			return nil, err
		}
		e.Event = []byte(raw)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Head returns the newest inbox sequence number.
func (db *DB) Head(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT max(seq) FROM inbox`).Scan(&seq)
	return seq.Int64, err
}
