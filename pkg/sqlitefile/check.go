package sqlitefile

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The start check. Every ParkMesh SQLite file (the services' stores, the
// gateway's state, the club index) goes through Prepare before it is
// opened, so a damaged file is refused with one kind of message and a lost
// one is never silently replaced by an empty one (DESIGN.md "Storage").

// RecordName is the store record in a data directory: the file names of
// the stores created there, one a line. A store it names that is missing
// or empty was lost, not never made.
const RecordName = "stores.txt"

// DefaultCheckTimeout bounds the quick_check at start. A file whose check
// takes longer (several GiB on a slow disk) is opened anyway and checked
// to the end in the background: damage found then makes the store not
// ready (Ping) instead of holding the start for minutes.
const DefaultCheckTimeout = 20 * time.Second

// maxCheckErrors is how many problems quick_check reports at most: the
// first few say enough, and stopping early bounds the time on a wreck.
const maxCheckErrors = 10

// CheckOptions say how Prepare treats a file that is missing, empty or
// damaged.
type CheckOptions struct {
	// AllowEmpty lets a missing or empty store be (re)created although the
	// data directory's record says it existed (-allow-empty-store). A
	// damaged file is refused all the same: it has to be moved away.
	AllowEmpty bool
	// Rebuildable marks a cache (the club index): missing or empty, it is
	// created, since it is filled again from its sources; damaged, it is
	// refused with advice to move it away.
	Rebuildable bool
	// What names the file in messages ("store", "gateway state",
	// "club index").
	What string
	// Timeout bounds quick_check (DefaultCheckTimeout when 0).
	Timeout time.Duration
	Logger  *slog.Logger
}

// StartError is why a store refused to open: the file, what is wrong with
// it and what the operator does about it.
type StartError struct {
	Path    string
	Problem string
	Remedy  string
}

func (e *StartError) Error() string {
	return fmt.Sprintf("%s %s. %s", e.Path, e.Problem, e.Remedy)
}

// CheckResult is what Prepare found.
type CheckResult struct {
	// Created: the file did not exist (or was empty, where that is
	// allowed) and was made with its schema.
	Created bool
	// Unfinished: quick_check did not end within the timeout; the caller
	// checks the file to the end in the background (CheckFile).
	Unfinished bool
}

// Prepare checks the SQLite file at path before it is opened and creates
// it when it should be created: a file that is missing from a data
// directory that never held it, or is a cache. migrate brings a new file's
// schema up; the file appears at path only once that committed, so an
// empty or schema-less file at path is always something that went wrong.
// It returns a *StartError when the file must not be opened.
func Prepare(ctx context.Context, path string, migrate func(context.Context, *sql.DB) error, o CheckOptions) (CheckResult, error) {
	if o.What == "" {
		o.What = "store"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	dir, name := filepath.Dir(path), filepath.Base(path)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := noOrphanWAL(path, o); err != nil {
			return CheckResult{}, err
		}
		known, err := recorded(dir, name)
		if err != nil {
			return CheckResult{}, err
		}
		if known && !o.Rebuildable && !o.AllowEmpty {
			return CheckResult{}, &StartError{Path: path,
				Problem: fmt.Sprintf("is missing, but this data directory held it (%s names it)", RecordName),
				Remedy:  Remedy(path, o, "missing")}
		}
		if known || o.Rebuildable {
			o.Logger.Warn("creating an empty "+o.What, "db", path, "allow_empty_store", o.AllowEmpty)
		}
		return createFile(ctx, path, migrate, o)
	case err != nil:
		return CheckResult{}, &StartError{Path: path, Problem: "cannot be read: " + err.Error(), Remedy: "Check the data directory's permissions and disk."}
	case fi.IsDir():
		return CheckResult{}, &StartError{Path: path, Problem: "is a directory", Remedy: "Move it away."}
	}

	problem, empty, unfinished, err := CheckFile(ctx, path, o.Timeout)
	if err != nil {
		return CheckResult{}, err
	}
	if empty && problem == "" {
		if fi.Size() == 0 {
			problem = "is empty (zero bytes)"
		} else {
			problem = "holds no table (an empty database)"
		}
		if o.Rebuildable || o.AllowEmpty {
			if err := noOrphanWAL(path, o); err != nil {
				return CheckResult{}, err
			}
			o.Logger.Warn("replacing an empty "+o.What+" with a new one", "db", path, "was", problem)
			return createFile(ctx, path, migrate, o)
		}
		return CheckResult{}, &StartError{Path: path, Problem: problem, Remedy: Remedy(path, o, "empty")}
	}
	if problem != "" {
		return CheckResult{}, &StartError{Path: path, Problem: "is damaged: " + problem, Remedy: Remedy(path, o, "damaged")}
	}
	if unfinished {
		o.Logger.Warn("the "+o.What+"'s quick_check did not finish at start; it goes on in the background",
			"db", path, "timeout", timeoutOr(o.Timeout).String(), "size_bytes", fi.Size())
	}
	if !o.Rebuildable {
		if err := record(dir, name); err != nil {
			return CheckResult{}, err
		}
	}
	return CheckResult{Unfinished: unfinished}, nil
}

// Option sets one of PrepareFile's CheckOptions.
type Option func(*CheckOptions)

// AllowEmpty lets a missing or empty file be (re)created although its data
// directory's record says it existed (-allow-empty-store).
func AllowEmpty(allow bool) Option { return func(o *CheckOptions) { o.AllowEmpty = allow } }

// What names the file in messages ("store" by default).
func What(what string) Option { return func(o *CheckOptions) { o.What = what } }

// WithLogger logs the start check to l.
func WithLogger(l *slog.Logger) Option { return func(o *CheckOptions) { o.Logger = l } }

// PrepareFile is Prepare with options, for SQLite files that are not a
// listing store (the gateway's state): their Open passes its callers'
// options on without building CheckOptions itself.
func PrepareFile(ctx context.Context, path string, migrate func(context.Context, *sql.DB) error, opts ...Option) (CheckResult, error) {
	var o CheckOptions
	for _, opt := range opts {
		opt(&o)
	}
	return Prepare(ctx, path, migrate, o)
}

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultCheckTimeout
	}
	return d
}

// Remedy says what the operator does about the file at path in state
// ("missing", "empty", "damaged"). The Store says it again when damage
// shows up while it serves.
func Remedy(path string, o CheckOptions, state string) string {
	if o.Rebuildable {
		return fmt.Sprintf("The %s is a cache of the feeds: stop the process, move %s (with its -wal and -shm files) away and start again; it is rebuilt from the park's and its peers' feeds.", o.What, path)
	}
	restore := "Restore the park from its backup (`parkmesh restore --from DIR`, with the node stopped)"
	restart := ""
	if o.What == "store" {
		restart = " (its change log starts again at 1; peers copy it afresh)"
	}
	switch state {
	case "missing":
		return restore + ", or start with -allow-empty-store (PARKMESH_ALLOW_EMPTY_STORE=true) to begin with an empty " + o.What + restart + "."
	case "empty":
		return restore + ", or start with -allow-empty-store (PARKMESH_ALLOW_EMPTY_STORE=true) to replace it with an empty " + o.What + restart + "."
	}
	return restore + ", or move " + path + " (with its -wal and -shm files) away and start with -allow-empty-store (PARKMESH_ALLOW_EMPTY_STORE=true) to begin with an empty " + o.What + "."
}

// noOrphanWAL refuses a write-ahead log without its database: SQLite would
// replay it into the new file. An empty -wal or -shm is only removed.
func noOrphanWAL(path string, o CheckOptions) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if suffix == "-wal" && fi.Size() > 0 {
			return &StartError{Path: path, Problem: "is missing or empty, but its write-ahead log " + filepath.Base(path) + "-wal holds data",
				Remedy: Remedy(path, o, "damaged")}
		}
		if err := os.Remove(path + suffix); err != nil {
			return err
		}
	}
	return nil
}

// createFile makes the database at a temporary name, brings its schema up and
// only then renames it to path, so an interrupted first start leaves no
// half-made file at path. The new file is recorded in its directory.
func createFile(ctx context.Context, path string, migrate func(context.Context, *sql.DB) error, o CheckOptions) (CheckResult, error) {
	tmp := path + ".new"
	for _, f := range []string{tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return CheckResult{}, err
		}
	}
	db, err := sql.Open("sqlite", "file:"+tmp+"?_pragma=foreign_keys(ON)")
	if err != nil {
		return CheckResult{}, err
	}
	db.SetMaxOpenConns(1)
	err = migrate(ctx, db)
	if err == nil {
		// WAL is a property of the file: set once here, it holds for
		// every later connection.
		_, err = db.ExecContext(ctx, `PRAGMA journal_mode=WAL`)
	}
	err = errors.Join(err, db.Close())
	if err == nil {
		err = syncFile(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncFile(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return CheckResult{}, fmt.Errorf("creating %s %s: %w", o.What, path, err)
	}
	if !o.Rebuildable {
		if err := record(filepath.Dir(path), filepath.Base(path)); err != nil {
			return CheckResult{}, err
		}
	}
	return CheckResult{Created: true}, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// sqliteMagic begins every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// CheckFile checks the SQLite file at path: its header, then PRAGMA
// quick_check within timeout (DefaultCheckTimeout when 0; negative: no
// bound). problem describes damage ("" when none was found); empty reports
// a zero-length file or one without ParkMesh's schema; unfinished that the
// check ran out of time before it found anything. err is for failures that
// say nothing about the file (a cancelled ctx).
func CheckFile(ctx context.Context, path string, timeout time.Duration) (problem string, empty, unfinished bool, err error) {
	if problem, empty = checkHeader(path); problem != "" || empty {
		return problem, empty, false, nil
	}
	if timeout == 0 {
		timeout = DefaultCheckTimeout
	}
	checkCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		checkCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// A connection of its own, so nothing cached by the store's pools
	// hides what is on disk now.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return "", false, false, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows, err := db.QueryContext(checkCtx, fmt.Sprintf(`PRAGMA quick_check(%d)`, maxCheckErrors))
	var found []string
	if err == nil {
		for rows.Next() {
			var line string
			if err = rows.Scan(&line); err != nil {
				break
			}
			found = append(found, line)
		}
		err = errors.Join(err, rows.Err())
		rows.Close()
	}
	switch {
	case ctx.Err() != nil:
		return "", false, false, ctx.Err()
	case err != nil && checkCtx.Err() != nil:
		return "", false, true, nil
	case err != nil && ClassOf(err) == "":
		return "", false, false, fmt.Errorf("checking %s: %w", path, err)
	}
	if len(found) != 1 || found[0] != "ok" {
		problem = strings.Join(found, "; ")
		if err != nil {
			problem = strings.TrimPrefix(problem+"; ", "; ") + err.Error()
		}
		return "quick_check: " + problem, false, false, nil
	}
	var n int
	if err := db.QueryRowContext(checkCtx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		if ClassOf(err) != "" {
			return err.Error(), false, false, nil
		}
		return "", false, false, fmt.Errorf("checking %s: %w", path, err)
	}
	return "", n == 0, false, nil
}

// checkHeader reads the file's first 100 bytes: the SQLite magic and a
// page size the format allows, and that the file holds whole pages.
func checkHeader(path string) (problem string, empty bool) {
	f, err := os.Open(path)
	if err != nil {
		return "cannot be opened: " + err.Error(), false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "cannot be read: " + err.Error(), false
	}
	if fi.Size() == 0 {
		return "", true
	}
	hdr := make([]byte, 100)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Sprintf("is %d bytes, shorter than a SQLite header", fi.Size()), false
	}
	if !bytes.Equal(hdr[:16], sqliteMagic) {
		return "does not start with the SQLite header (overwritten or not a database)", false
	}
	pageSize := int64(hdr[16])<<8 | int64(hdr[17])
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return fmt.Sprintf("has an invalid page size %d in its header", pageSize), false
	}
	if fi.Size()%pageSize != 0 {
		return fmt.Sprintf("is %d bytes, not a whole number of %d-byte pages (truncated?)", fi.Size(), pageSize), false
	}
	return "", false
}

// recorded reports whether dir's store record names name.
func recorded(dir, name string) (bool, error) {
	f, err := os.Open(filepath.Join(dir, RecordName))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == name {
			return true, nil
		}
	}
	return false, sc.Err()
}

// record adds name to dir's store record unless it is there. Processes
// starting together on one data directory each append one short line
// (O_APPEND), which does not interleave.
func record(dir, name string) error {
	if ok, err := recorded(dir, name); err != nil || ok {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, RecordName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("recording store %s: %w", name, err)
	}
	_, err = f.WriteString(name + "\n")
	return errors.Join(err, f.Sync(), f.Close())
}
