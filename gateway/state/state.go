// Package state is the gateway's own durable state, in one SQLite file
// (<data-dir>/gateway-feed.db) upgraded by embedded, ordered migrations:
// the webhooks with their delivery queue and the dispatcher's position,
// park-local token records and revocations, staff accounts, portal
// sessions and failed sign-in counts.
// (The peers' listings and feed positions live in the club index.) What every gateway replica
// must agree on sits behind this package's methods, so a shared database
// can take its place (DESIGN.md "Storage").
package state

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the state file's name in the gateway's data directory.
const FileName = "gateway-feed.db"

// DB is the gateway's state.
type DB struct {
	write, read *sql.DB
}

// Open checks the gateway's state in dataDir as every ParkMesh SQLite
// file is checked (sqlitefile.Prepare: damaged, or missing or empty where
// the data directory held it, it is refused with a *sqlitefile.StartError
// unless opts allow an empty one), creates it in a new data directory, and
// brings its schema up to date.
func Open(ctx context.Context, dataDir string, opts ...sqlitefile.Option) (*DB, error) {
	path, err := filepath.Abs(filepath.Join(dataDir, FileName))
	if err != nil {
		return nil, err
	}
	migrate := func(ctx context.Context, db *sql.DB) error {
		return sqlitefile.Migrate(ctx, db, migrations, "migrations")
	}
	if _, err := sqlitefile.PrepareFile(ctx, path, migrate, append([]sqlitefile.Option{sqlitefile.What("gateway state")}, opts...)...); err != nil {
		return nil, err
	}
	w, r, err := sqlitefile.OpenDB(path)
	if err != nil {
		return nil, err
	}
	if err := sqlitefile.Migrate(ctx, w, migrations, "migrations"); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("gateway state %s: %w", path, err)
	}
	return &DB{write: w, read: r}, nil
}

// Close closes the database.
func (db *DB) Close() error { return errors.Join(db.read.Close(), db.write.Close()) }
