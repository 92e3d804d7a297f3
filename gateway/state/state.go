// Package state is the gateway's own durable state, in one SQLite file
// (<data-dir>/gateway-feed.db) upgraded by embedded, ordered migrations:
// the webhooks with their delivery queue and the dispatcher's position.
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

	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the state file's name in the gateway's data directory.
const FileName = "gateway-feed.db"

// DB is the gateway's state.
type DB struct {
	write, read *sql.DB
}

// Open opens (creating) the gateway's state in dataDir and brings its
// schema up to date.
func Open(ctx context.Context, dataDir string) (*DB, error) {
	path := filepath.Join(dataDir, FileName)
	w, r, err := sqlitestore.OpenDB(path)
	if err != nil {
		return nil, err
	}
	if err := sqlitestore.Migrate(ctx, w, migrations, "migrations"); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("gateway state %s: %w", path, err)
	}
	return &DB{write: w, read: r}, nil
}

// Close closes the database.
func (db *DB) Close() error { return errors.Join(db.read.Close(), db.write.Close()) }
