//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package parkkey

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// lock serialises writers of one key directory (init, rotate, retain) across
// processes with an advisory flock, which the kernel drops if the process
// dies. Readers need no lock: every file is replaced by rename.
func lock(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, apierror.New(apierror.NotFound, "no key set in %s; run parkmesh init first", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("parkkey: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("parkkey: lock %s: %w", dir, err)
	}
	return func() { _ = f.Close() }, nil
}
