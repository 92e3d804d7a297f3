package sqlitefile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// The backup side of a file: a copy taken while it is in use, and whether
// anyone has it open (a restore must not replace a file in use).

// CopyTo writes a consistent copy of the SQLite file at src to dst (which
// must not exist) with VACUUM INTO: one read transaction on src, so the
// processes using src go on reading and writing meanwhile (WAL), and the
// copy is the database as of one commit. It works for every ParkMesh
// SQLite file (stores, the gateway's state). src must exist: it is never
// created.
func CopyTo(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlitefile: backup %s: %w", src, err)
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("sqlitefile: backup %s: %s already exists", src, dst)
	}
	write, read, err := OpenDB(src)
	if err != nil {
		return err
	}
	defer write.Close()
	defer read.Close()
	if _, err := read.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("sqlitefile: backup %s: %w", src, err)
	}
	return nil
}

// InUse reports whether a process has the SQLite file at path open: every
// connection to a WAL database holds a shared lock on the -shm file's
// "DMS" byte for as long as it is open (that is how SQLite itself tells the
// first connection from the others), so a write lock there that cannot be
// had means someone is using the database. A file with no -shm beside it
// is not open in WAL mode by anyone. Locks held by this process are not
// seen: call it with nothing open here.
func InUse(path string) (bool, error) {
	f, err := os.OpenFile(path+"-shm", os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	return shmLocked(f)
}
