//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package parkkey

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// lock only checks that dir exists where flock is unavailable: concurrent
// writers of one key directory are not serialised there.
func lock(dir string) (unlock func(), err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, apierror.New(apierror.NotFound, "no key set in %s; run parkmesh init first", dir)
	} else if err != nil {
		return nil, fmt.Errorf("parkkey: %w", err)
	}
	return func() {}, nil
}
