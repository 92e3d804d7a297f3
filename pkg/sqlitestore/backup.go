package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
)

// ServiceFileName is the file of the store of park's service keeping kind
// k, in the service's data directory.
func ServiceFileName(park string, k listing.Kind) string {
	return park + "-" + k.Service() + ".db"
}

// FileSeq is the newest sequence a store file (a service's, not closed
// over by a running Store in this process) ever issued: its LastSeq. A
// file without a change log (not a listing store) is an error.
func FileSeq(ctx context.Context, path string) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	write, read, err := sqlitefile.OpenDB(path)
	if err != nil {
		return 0, err
	}
	defer write.Close()
	defer read.Close()
	var tables int
	if err := read.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'changes'`).Scan(&tables); err != nil {
		return 0, fmt.Errorf("sqlitestore: %s: %w", path, err)
	}
	if tables == 0 {
		return 0, fmt.Errorf("sqlitestore: %s is not a listing store (no change log)", path)
	}
	var seq sql.NullInt64
	err = read.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'changes'`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq.Int64, err
}

// SeqJump is how far a restore moves a store's sequence past any number
// it may have issued: the next change after a restore is numbered above
// max(the backup's LastSeq, the replaced file's LastSeq) + SeqJump. A park
// would have to write four billion changes of one kind between a backup
// and its restore, on a file that was then lost, before a number could be
// issued twice; and an int64 (JSON-safe below 2^53) leaves room for two
// million restores.
const SeqJump int64 = 1 << 32

// Restart is the record a restore leaves in a store: the sequences after
// After up to and including Base were never issued by the restored
// history, so a position among them was read from a history that the
// restore undid.
type Restart struct {
	After int64     `json:"after"` // the backup's LastSeq: positions up to it stay valid
	Base  int64     `json:"base"`  // the next change is numbered Base+1
	At    time.Time `json:"at"`
}

// Void reports whether position p falls in r's skipped range.
func (r Restart) Void(p int64) bool { return p > r.After && p <= r.Base }

// RestartBase is the rule for the next sequence of a restored store:
// above both what the backup holds (restored) and what the file it
// replaces had issued (replaced, 0 when that is unknown: a new host), by
// SeqJump, which covers what a lost file may have issued after the backup.
func RestartBase(restored, replaced int64) (int64, error) {
	top := max(restored, replaced)
	if top > math.MaxInt64/2-SeqJump || top < 0 {
		return 0, fmt.Errorf("sqlitestore: sequence %d leaves no room for a restart", top)
	}
	return top + SeqJump, nil
}

// metaRestarts is the meta key holding a store's restarts (JSON array).
const metaRestarts = "restarts"

// MarkRestart moves the sequence of the store file at path (not open
// anywhere: the node is stopped) to base, so that the next change is
// numbered base+1, and records the restart in the store's meta, in one
// transaction. It refuses a base below the file's own LastSeq: a sequence
// never goes back.
func MarkRestart(ctx context.Context, path string, base int64, at time.Time) (Restart, error) {
	if _, err := os.Stat(path); err != nil {
		return Restart{}, err
	}
	w, r, err := sqlitefile.OpenDB(path)
	if err != nil {
		return Restart{}, err
	}
	defer r.Close()
	defer w.Close()
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return Restart{}, err
	}
	defer tx.Rollback()
	var last sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'changes'`).Scan(&last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Nothing ever written: AUTOINCREMENT has no row yet.
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence(name, seq) VALUES ('changes', ?)`, base); err != nil {
			return Restart{}, fmt.Errorf("sqlitestore: %s: %w", path, err)
		}
	case err != nil:
		return Restart{}, fmt.Errorf("sqlitestore: %s: %w", path, err)
	case last.Int64 > base:
		return Restart{}, fmt.Errorf("sqlitestore: %s: sequence %d is past the restart base %d", path, last.Int64, base)
	default:
		if _, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = ? WHERE name = 'changes'`, base); err != nil {
			return Restart{}, fmt.Errorf("sqlitestore: %s: %w", path, err)
		}
	}
	rs := Restart{After: last.Int64, Base: base, At: at.UTC()}
	var all []Restart
	var raw []byte
	err = tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaRestarts).Scan(&raw)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Restart{}, err
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &all); err != nil {
			return Restart{}, fmt.Errorf("sqlitestore: %s: corrupt restart record: %w", path, err)
		}
	}
	all = append(all, rs)
	if raw, err = json.Marshal(all); err != nil {
		return Restart{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)`, metaRestarts, raw); err != nil {
		return Restart{}, err
	}
	return rs, tx.Commit()
}

// Restarts lists the restarts recorded in the store, oldest first.
func (s *Store) Restarts(ctx context.Context) ([]Restart, error) {
	var raw []byte
	err := s.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaRestarts).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var all []Restart
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("sqlitestore: corrupt restart record: %w", err)
	}
	return all, nil
}
