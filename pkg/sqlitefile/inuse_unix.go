//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlitefile

import (
	"fmt"
	"os"
	"syscall"
)

// shmDMS is the byte of a WAL database's -shm file on which every open
// connection holds a shared lock (SQLite's os_unix.c: UNIX_SHM_DMS, 120 +
// 8 lock bytes).
const shmDMS = 128

// shmLocked asks the kernel whether another process holds a lock on the
// DMS byte of the -shm file f.
func shmLocked(f *os.File) (bool, error) {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: shmDMS, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return false, fmt.Errorf("sqlitefile: lock query on %s: %w", f.Name(), err)
	}
	return lk.Type != syscall.F_UNLCK, nil
}
