//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlitefile

import (
	"errors"
	"os"
)

// shmLocked cannot tell on this system.
func shmLocked(*os.File) (bool, error) {
	return false, errors.New("sqlitefile: cannot tell whether a database is open on this system")
}
