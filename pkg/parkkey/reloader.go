package parkkey

import (
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultReloadInterval is how often a Reloader looks at the manifest.
const DefaultReloadInterval = time.Second

// Reloader keeps a key set current for a long-running process such as the
// gateway: a rotation done by the admin CLI, or a retired key reaching the
// end of its publication, shows up within one check interval. It is safe
// for concurrent use.
type Reloader struct {
	dataDir  string
	opts     []Option
	now      func() time.Time
	interval time.Duration

	mu      sync.Mutex
	ks      *KeySet
	stat    os.FileInfo
	checked time.Time
	err     error
}

// NewReloader loads the key set in dataDir and returns a Reloader that
// re-reads it, at most every interval (DefaultReloadInterval when 0), when
// the manifest changed or a retired key's publication ended. Options are
// those of Load.
func NewReloader(dataDir string, interval time.Duration, opts ...Option) (*Reloader, error) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	r := &Reloader{dataDir: dataDir, opts: opts, now: buildOptions(opts).now, interval: interval}
	stat, _ := os.Stat(filepath.Join(Dir(dataDir), manifestName))
	ks, err := Load(dataDir, opts...)
	if err != nil {
		return nil, err
	}
	r.ks, r.stat, r.checked = ks, stat, r.now()
	return r, nil
}

// KeySet returns the current key set. When re-reading fails it keeps
// returning the last good set and Err reports why.
func (r *Reloader) KeySet() *KeySet {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < r.interval && now.After(r.checked) {
		return r.ks
	}
	r.checked = now
	stat, err := os.Stat(filepath.Join(Dir(r.dataDir), manifestName))
	if err != nil {
		r.err = err
		return r.ks
	}
	expired := false
	if next := r.ks.nextExpiry(); !next.IsZero() && !now.Before(next) {
		expired = true
	}
	if !expired && r.stat != nil && os.SameFile(stat, r.stat) && stat.ModTime().Equal(r.stat.ModTime()) && stat.Size() == r.stat.Size() {
		return r.ks
	}
	ks, err := Load(r.dataDir, r.opts...)
	if err != nil {
		r.err = err
		return r.ks
	}
	r.ks, r.stat, r.err = ks, stat, nil
	return r.ks
}

// Err returns why the last re-read failed, nil when it succeeded.
func (r *Reloader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
