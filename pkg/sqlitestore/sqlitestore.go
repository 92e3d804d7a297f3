// Package sqlitestore is the embedded listing.Store: one SQLite file per
// service (pure Go driver, no cgo), WAL journal, schema migrations embedded
// in the binary, FTS5 full-text search over CJK bigrams and English words,
// and, written in the same transaction as each change, the by-sequence
// index that changes reads come from and the change log (the audit trail,
// which Compact trims).
//
// The same Store is also a club index (index.go): many parks' listings of
// every kind in one file, applied as their origins' changes arrive (Put,
// Remove, Purge), searched by the same Search.
//
// What is true of every ParkMesh SQLite file, not only of a listing store
// (the start check, opening, migrating, copying, the storage error
// classes), is in package sqlitefile; what a listing's search entry holds
// and how a query becomes FTS5 MATCH expressions, in package ftsdoc.
package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	pagecursor "github.com/parkmesh/parkmesh/pkg/cursor"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a listing.Store backed by one SQLite file.
type Store struct {
	path    string
	write   *sql.DB // one connection: SQLite has one writer
	read    *sql.DB
	cursors pagecursor.Signer // signs page cursors with a key kept in the database

	mu     sync.Mutex
	signal chan struct{}

	// What the store knows of its file's health (health.go).
	name         string // the file's base name, the metric's store label
	logger       *slog.Logger
	errorsTotal  *prometheus.CounterVec
	health       health
	checkOpts    sqlitefile.CheckOptions
	checkTimeout time.Duration
	recheckNow   chan struct{}
	stopRecheck  context.CancelFunc
	recheckDone  chan struct{}

	// Statements every text search runs, prepared once (rank.go).
	searchOnce  sync.Once
	tierStmt    *sql.Stmt
	hasWordStmt *sql.Stmt
	searchErr   error

	// FacetScan bounds the matches a search's facet counts read (newest
	// first); 0 means DefaultFacetScan. Set it before the first search.
	FacetScan int
}

// Option changes how Open opens a store.
type Option func(*openOptions)

type openOptions struct {
	check        sqlitefile.CheckOptions
	registerer   prometheus.Registerer
	recheckEvery time.Duration
}

// AllowEmpty lets Open begin with an empty store where its data directory
// says one existed (-allow-empty-store): the file is missing, zero bytes
// or holds no schema. A damaged file is refused all the same.
func AllowEmpty(allow bool) Option { return func(o *openOptions) { o.check.AllowEmpty = allow } }

// Rebuildable opens a cache (the club index): missing or empty, it is
// created without question; damaged, it is refused with advice to move it
// away, since it is rebuilt from its sources.
func Rebuildable(what string) Option {
	return func(o *openOptions) { o.check.Rebuildable, o.check.What = true, what }
}

// What names the file in messages ("store" by default).
func What(what string) Option { return func(o *openOptions) { o.check.What = what } }

// WithLogger logs the store's start check and storage failures to l.
func WithLogger(l *slog.Logger) Option { return func(o *openOptions) { o.check.Logger = l } }

// WithRegisterer counts storage failures (parkmesh_store_errors_total)
// in reg.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *openOptions) { o.registerer = reg }
}

// WithCheckTimeout bounds quick_check at start and at each re-check
// (sqlitefile.DefaultCheckTimeout by default).
func WithCheckTimeout(d time.Duration) Option { return func(o *openOptions) { o.check.Timeout = d } }

// WithRecheckEvery sets how often a failing store checks its file again
// (DefaultRecheckEvery by default).
func WithRecheckEvery(d time.Duration) Option { return func(o *openOptions) { o.recheckEvery = d } }

// DefaultRecheckEvery is how often a failing store checks its file again.
const DefaultRecheckEvery = 15 * time.Second

var _ listing.Store = (*Store)(nil)

// Open checks the database file at path (sqlitefile.Prepare: a damaged
// file, or a missing or empty one its data directory held, is a
// *sqlitefile.StartError), creates it when it should, and applies pending
// migrations.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlitestore: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	o := openOptions{recheckEvery: DefaultRecheckEvery}
	for _, opt := range opts {
		opt(&o)
	}
	if o.check.Logger == nil {
		o.check.Logger = slog.New(slog.DiscardHandler)
	}
	if o.check.What == "" {
		// The re-check says the remedy again with these options.
		o.check.What = "store"
	}
	checked, err := sqlitefile.Prepare(ctx, abs, func(ctx context.Context, db *sql.DB) error {
		return sqlitefile.Migrate(ctx, db, migrations, "migrations")
	}, o.check)
	if err != nil {
		return nil, err
	}
	s := &Store{path: abs, signal: make(chan struct{}),
		name: filepath.Base(abs), logger: o.check.Logger, errorsTotal: errorsTotal(o.registerer),
		checkOpts: o.check, checkTimeout: o.check.Timeout, recheckNow: make(chan struct{}, 1)}
	s.health.unchecked = checked.Unfinished
	if s.write, s.read, err = sqlitefile.OpenDB(abs); err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlitestore: migrate %s: %w", abs, err)
	}
	if err := s.reindexIfMarked(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlitestore: reindex %s: %w", abs, err)
	}
	var key []byte
	if err := s.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'cursor_key'`).Scan(&key); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlitestore: read cursor key: %w", err)
	}
	s.cursors = pagecursor.New(key)
	recheckCtx, stop := context.WithCancel(context.Background())
	s.stopRecheck, s.recheckDone = stop, make(chan struct{})
	go s.recheckLoop(recheckCtx, o.recheckEvery)
	return s, nil
}

// migrate applies the store's embedded migrations.
func (s *Store) migrate(ctx context.Context) error {
	return sqlitefile.Migrate(ctx, s.write, migrations, "migrations")
}

// Path returns the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Close closes the database. Pending writes have committed or rolled back.
func (s *Store) Close() error {
	if s.stopRecheck != nil {
		s.stopRecheck()
		<-s.recheckDone
		s.stopRecheck = nil
	}
	var errs []error
	for _, st := range []*sql.Stmt{s.tierStmt, s.hasWordStmt} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	if s.write != nil {
		errs = append(errs, s.write.Close())
	}
	return errors.Join(errs...)
}

// Ping reports whether the store can serve: Unavailable, with the reason,
// while an I/O error or damage seen since its last check stands (a full or
// read-only disk stops writes only, so it is not reported here), or when
// the database does not answer.
func (s *Store) Ping(ctx context.Context) error {
	if failing, _ := s.Health(); failing != nil {
		return apierror.New(apierror.Unavailable, "store %s failing: %v", s.name, failing)
	}
	var one int
	err := s.read.QueryRowContext(ctx, `SELECT 1 FROM meta LIMIT 1`).Scan(&one)
	if err != nil {
		return s.observe(err)
	}
	return nil
}

// ChangeSignal returns a channel that is closed when the next change commits.
func (s *Store) ChangeSignal() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signal
}

func (s *Store) notify() {
	s.mu.Lock()
	close(s.signal)
	s.signal = make(chan struct{})
	s.mu.Unlock()
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// Create implements listing.Store.
func (s *Store) Create(ctx context.Context, l *listing.Listing) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return create(ctx, tx, l) })
}

// create is Create inside tx: the listing, its index entry, its change log
// entry and its by_seq row.
func create(ctx context.Context, tx *sql.Tx, l *listing.Listing) error {
	l.Match = nil // a search result's, never stored
	doc, err := json.Marshal(l)
	if err != nil {
		return err
	}
	held, err := loadSeqRow(ctx, tx, l.Park, l.ID)
	if err != nil {
		return err
	}
	if held != nil {
		// Deleted ids stay taken: their tombstone is still read.
		return apierror.New(apierror.Conflict, "listing %s already exists", l.ID)
	}
	if err := insertListing(ctx, tx, l, doc); err != nil {
		return err
	}
	seq, err := appendChange(ctx, tx, listing.OpCreated, l, l.UpdatedAt, doc)
	if err != nil {
		return err
	}
	return saveSeqRow(ctx, tx, &seqRow{
		park: l.Park, id: l.ID, kind: l.Kind, seq: seq, firstSeq: seq, version: l.Version,
		at: l.UpdatedAt, audience: listing.Audience{}.With(l),
	})
}

// Get implements listing.Store. In a club index holding two parks' listings
// with the same id it returns one of them; GetOf names the park.
func (s *Store) Get(ctx context.Context, id string) (*listing.Listing, error) {
	return s.getDoc(ctx, id, `SELECT doc FROM listings WHERE id = ? LIMIT 1`, id)
}

// getDoc reads the one listing document query selects, or NotFound naming id.
func (s *Store) getDoc(ctx context.Context, id, query string, args ...any) (*listing.Listing, error) {
	var doc string
	err := s.read.QueryRowContext(ctx, query, args...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apierror.New(apierror.NotFound, "no listing %s", id)
	}
	if err != nil {
		return nil, s.observe(err)
	}
	return decode(doc)
}

func decode(doc string) (*listing.Listing, error) {
	var l listing.Listing
	if err := json.Unmarshal([]byte(doc), &l); err != nil {
		return nil, fmt.Errorf("sqlitestore: corrupt listing document: %w", err)
	}
	return &l, nil
}

// current loads the stored listing id inside tx and checks ifVersion. It
// returns the listing's rowid and its stored state.
func current(ctx context.Context, tx *sql.Tx, id string, ifVersion int64) (int64, *listing.Listing, error) {
	var rid int64
	var doc string
	err := tx.QueryRowContext(ctx, `SELECT rid, doc FROM listings WHERE id = ?`, id).Scan(&rid, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, apierror.New(apierror.NotFound, "no listing %s", id)
	}
	if err != nil {
		return 0, nil, err
	}
	cur, err := decode(doc)
	if err != nil {
		return 0, nil, err
	}
	if ifVersion != 0 && cur.Version != ifVersion {
		return 0, nil, &apierror.Error{Code: apierror.PreconditionFailed, Field: "If-Match",
			Message: fmt.Sprintf("listing %s is at version %d, not %d", id, cur.Version, ifVersion)}
	}
	return rid, cur, nil
}

// Update implements listing.Store.
func (s *Store) Update(ctx context.Context, l *listing.Listing, ifVersion int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		rid, cur, err := current(ctx, tx, l.ID, ifVersion)
		if err != nil {
			return err
		}
		l.Version = cur.Version + 1
		l.CreatedAt = cur.CreatedAt
		l.Park = cur.Park
		l.Match = nil // a search result's, never stored
		doc, err := json.Marshal(l)
		if err != nil {
			return err
		}
		if err := replaceListing(ctx, tx, rid, l, doc); err != nil {
			return err
		}
		seq, err := appendChange(ctx, tx, listing.OpUpdated, l, l.UpdatedAt, doc)
		if err != nil {
			return err
		}
		row, err := heldSeqRow(ctx, tx, l.Park, l.ID)
		if err != nil {
			return err
		}
		row.seq, row.version, row.at, row.audience = seq, l.Version, l.UpdatedAt, row.audience.With(l)
		return saveSeqRow(ctx, tx, row)
	})
}

// Delete implements listing.Store.
func (s *Store) Delete(ctx context.Context, id string, ifVersion int64, at time.Time) (*listing.Listing, error) {
	var final *listing.Listing
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rid, cur, err := current(ctx, tx, id, ifVersion)
		if err != nil {
			return err
		}
		cur.Version++
		cur.UpdatedAt = at
		doc, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		if err := deleteListing(ctx, tx, rid); err != nil {
			return err
		}
		seq, err := appendChange(ctx, tx, listing.OpDeleted, cur, at, doc)
		if err != nil {
			return err
		}
		row, err := heldSeqRow(ctx, tx, cur.Park, id)
		if err != nil {
			return err
		}
		row.seq, row.version, row.at, row.deleted = seq, cur.Version, at, true
		final = cur
		return saveSeqRow(ctx, tx, row)
	})
	return final, err
}

// insertListing stores l as a new row, indexed for search.
func insertListing(ctx context.Context, tx *sql.Tx, l *listing.Listing, doc []byte) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO listings(park, kind, id, version, updated_at, doc) VALUES (?, ?, ?, ?, ?, ?)`,
		l.Park, string(l.Kind), l.ID, l.Version, micros(l.UpdatedAt), string(doc))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return apierror.New(apierror.Conflict, "listing %s already exists", l.ID)
		}
		return err
	}
	rid, err := res.LastInsertId()
	if err != nil {
		return err
	}
	return index(ctx, tx, rid, l)
}

// replaceListing stores l over the row rid, keeping its place in the
// newest-first order, and reindexes it.
func replaceListing(ctx context.Context, tx *sql.Tx, rid int64, l *listing.Listing, doc []byte) error {
	if _, err := tx.ExecContext(ctx, `UPDATE listings SET version = ?, updated_at = ?, doc = ? WHERE rid = ?`,
		l.Version, micros(l.UpdatedAt), string(doc), rid); err != nil {
		return err
	}
	if err := unindex(ctx, tx, rid); err != nil {
		return err
	}
	return index(ctx, tx, rid, l)
}

// deleteListing removes the row rid and its index entry.
func deleteListing(ctx context.Context, tx *sql.Tx, rid int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM listings WHERE rid = ?`, rid); err != nil {
		return err
	}
	return unindex(ctx, tx, rid)
}

// appendChange writes the change log entry (the audit trail and outbox) of
// a service's write and returns its sequence. Nothing reads the log back:
// changes reads come from by_seq, so the log can be compacted.
func appendChange(ctx context.Context, tx *sql.Tx, op listing.Op, l *listing.Listing, at time.Time, doc []byte) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO changes(op, listing_id, version, at, doc) VALUES (?, ?, ?, ?, ?)`,
		string(op), l.ID, l.Version, micros(at), string(doc))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// inTx runs fn in a write transaction, committing only if fn succeeds, and
// wakes change-log waiters after a commit. A storage failure (a full disk,
// say) rolls the whole transaction back and is answered by its class
// (observe); the next write that commits clears it.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return s.observe(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return s.observe(err)
	}
	if err := tx.Commit(); err != nil {
		return s.observe(err)
	}
	s.writeOK()
	s.notify()
	return nil
}
