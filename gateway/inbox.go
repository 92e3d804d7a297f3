package gateway

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// inboxSchema is the gateway's own state, in <data-dir>/gateway-feed.db:
// where it stands in each peer's feed, the newest version applied of every
// peer listing (for idempotent apply), the peers' events it applied (what
// the park's staff stream and webhooks read), and the webhooks.
const inboxSchema = `
CREATE TABLE IF NOT EXISTS peer_positions (
    peer          TEXT PRIMARY KEY,
    last_event_id TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS applied (
    park       TEXT NOT NULL,
    listing_id TEXT NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (park, listing_id)
);
CREATE TABLE IF NOT EXISTS inbox (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    park  TEXT NOT NULL,
    event TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id      TEXT PRIMARY KEY,
    url     TEXT NOT NULL,
    secret  TEXT NOT NULL,
    filter  TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    event      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    last_error TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`

// Inbox is the gateway's durable feed state.
type Inbox struct {
	write, read *sql.DB

	mu     sync.Mutex
	signal chan struct{}
}

// OpenInbox opens (creating) the gateway's feed database in dataDir.
func OpenInbox(ctx context.Context, dataDir string) (*Inbox, error) {
	w, r, err := sqlitestore.OpenDB(filepath.Join(dataDir, "gateway-feed.db"))
	if err != nil {
		return nil, err
	}
	if _, err := w.ExecContext(ctx, inboxSchema); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("gateway feed database: %w", err)
	}
	return &Inbox{write: w, read: r, signal: make(chan struct{})}, nil
}

// Close closes the database.
func (in *Inbox) Close() error { return errors.Join(in.read.Close(), in.write.Close()) }

// Signal returns a channel closed when an event is applied.
func (in *Inbox) Signal() <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.signal
}

func (in *Inbox) notify() {
	in.mu.Lock()
	close(in.signal)
	in.signal = make(chan struct{})
	in.mu.Unlock()
}

// Position returns the last event id applied from peer ("" if none).
func (in *Inbox) Position(ctx context.Context, peer string) (string, error) {
	var id string
	err := in.read.QueryRowContext(ctx, `SELECT last_event_id FROM peer_positions WHERE peer = ?`, peer).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// SetPosition records where the gateway stands in peer's feed (the stream's
// announced start), without an event.
func (in *Inbox) SetPosition(ctx context.Context, peer, id string) error {
	_, err := in.write.ExecContext(ctx, `INSERT INTO peer_positions(peer, last_event_id, updated_at) VALUES (?, ?, ?)
		ON CONFLICT(peer) DO UPDATE SET last_event_id = excluded.last_event_id, updated_at = excluded.updated_at`, peer, id, time.Now().UnixMicro())
	return err
}

// ResetPosition forgets where the gateway stands in peer's feed.
func (in *Inbox) ResetPosition(ctx context.Context, peer string) error {
	_, err := in.write.ExecContext(ctx, `DELETE FROM peer_positions WHERE peer = ?`, peer)
	return err
}

// Apply records one event of peer's feed, idempotently by (park, listing
// id, version): an event at or below the version already applied only
// moves the position. The position and the event commit together, so a
// crash never loses nor doubles one. It reports whether the event was new.
func (in *Inbox) Apply(ctx context.Context, peer, eventID string, listingID string, version int64, ev []byte) (bool, error) {
	tx, err := in.write.BeginTx(ctx, nil)
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
	if _, err := tx.ExecContext(ctx, `INSERT INTO peer_positions(peer, last_event_id, updated_at) VALUES (?, ?, ?)
		ON CONFLICT(peer) DO UPDATE SET last_event_id = excluded.last_event_id, updated_at = excluded.updated_at`, peer, eventID, now); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	if fresh {
		in.notify()
	}
	return fresh, nil
}

// InboxEvent is one applied peer event.
type InboxEvent struct {
	Seq   int64
	Park  string
	Event CloudEvent
}

// After returns up to limit applied events after seq.
func (in *Inbox) After(ctx context.Context, seq int64, limit int) ([]InboxEvent, error) {
	rows, err := in.read.QueryContext(ctx, `SELECT seq, park, event FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InboxEvent
	for rows.Next() {
		var e InboxEvent
		var raw string
		if err := rows.Scan(&e.Seq, &e.Park, &raw); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(raw), &e.Event); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Head returns the newest inbox sequence number.
func (in *Inbox) Head(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	err := in.read.QueryRowContext(ctx, `SELECT max(seq) FROM inbox`).Scan(&seq)
	return seq.Int64, err
}
