// Package sqlitefile is the life of any ParkMesh SQLite file, whatever it
// holds (a service's listing store, the gateway's state, the club index):
// the start check that refuses a damaged or lost file and creates a new
// one safely (Prepare), the schema migrations, the way a file is opened
// (WAL, one writer, a few readers), what kind of storage failure an error
// is (ClassOf), and the backup side: a consistent copy of a live file
// (CopyTo) and whether a process has it open (InUse).
//
// It lives apart from sqlitestore so that every file is checked, opened
// and copied one way, and so that what a listing store does (its schema,
// search, change log) is not mixed with what is true of every file.
package sqlitefile

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ReadIdle is how many idle read connections OpenDB's reader pool keeps.
const ReadIdle = 2

// OpenDB opens the SQLite file at path the way every ParkMesh store does:
// WAL, a busy timeout, immediate write transactions, one write connection
// (SQLite has one writer) and a small pool of readers.
func OpenDB(path string) (write, read *sql.DB, err error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	if write, err = sql.Open("sqlite", dsn); err != nil {
		return nil, nil, err
	}
	write.SetMaxOpenConns(1)
	if read, err = sql.Open("sqlite", dsn+"&_pragma=mmap_size(268435456)"); err != nil {
		write.Close()
		return nil, nil, err
	}
	read.SetMaxOpenConns(4)
	read.SetMaxIdleConns(ReadIdle)
	return write, read, nil
}

// Migrate applies, in name order and each in its own transaction, the
// migrations (*.sql in dir of fsys) not yet recorded in the database's
// schema_migrations table. Every ParkMesh SQLite file (the services'
// stores, the gateway's state) upgrades this one way.
func Migrate(ctx context.Context, db *sql.DB, fsys fs.FS, dir string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)`, name, time.Now().Unix()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}
