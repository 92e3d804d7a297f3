package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
)

// storageError is what a caller is told of a storage failure: a clear code
// and nothing of the file (the log names it).
func storageError(c sqlitefile.Class) *apierror.Error {
	switch c {
	case sqlitefile.ClassFull:
		return apierror.New(apierror.InsufficientStorage, "the store is out of disk space; nothing was written, and the same request succeeds once space is freed")
	case sqlitefile.ClassReadOnly:
		return apierror.New(apierror.Unavailable, "the store is read-only now; nothing was written")
	case sqlitefile.ClassIO:
		return apierror.New(apierror.Unavailable, "the store had a disk I/O error")
	}
	return apierror.New(apierror.Unavailable, "the store is damaged")
}

// errorsTotal counts storage failures by store file and class. One
// collector serves every store of a process (its registry may hold it
// already).
func errorsTotal(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parkmesh_store_errors_total",
		Help: "Storage failures of a SQLite store (full, readonly, io, corrupt), by store file.",
	}, []string{"store", "class"})
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// failure is a storage failure the store has seen.
type failure struct {
	class  sqlitefile.Class
	reason string
	since  time.Time
}

func (f *failure) err() error {
	if f == nil {
		return nil
	}
	return fmt.Errorf("%s since %s: %s", f.class, f.since.Format(time.RFC3339), f.reason)
}

// health is what a store has seen of its file since its last check.
type health struct {
	mu sync.Mutex
	// failing is an IO or Corrupt failure seen since the last quick_check
	// that passed: the store is not ready until a re-check passes.
	failing *failure
	// writes is a Full or ReadOnly failure seen since the last write that
	// committed: writes are refused, reads go on, readiness stays.
	writes *failure
	// unchecked: the start check ran out of time; the background check
	// has not finished yet.
	unchecked bool
}

// observe records err's storage class, counts it and logs the first of a
// kind, and returns what the caller is told; other errors pass unchanged.
func (s *Store) observe(err error) error {
	c := sqlitefile.ClassOf(err)
	if c == "" {
		return err
	}
	s.errorsTotal.WithLabelValues(s.name, string(c)).Inc()
	h := &s.health
	f := &failure{class: c, reason: err.Error(), since: time.Now().UTC()}
	h.mu.Lock()
	first := false
	switch c {
	case sqlitefile.ClassFull, sqlitefile.ClassReadOnly:
		if first = h.writes == nil; first {
			h.writes = f
		}
	default:
		if first = h.failing == nil; first {
			h.failing = f
		}
	}
	h.mu.Unlock()
	if first {
		s.logger.Error("store failing: "+string(c), "db", s.path, "class", string(c), "err", err)
		if c == sqlitefile.ClassIO || c == sqlitefile.ClassCorrupt {
			s.dropIdleReaders()
			s.kick()
		}
	}
	return storageError(c)
}

// writeOK notes a committed write: the disk takes writes again.
func (s *Store) writeOK() {
	h := &s.health
	h.mu.Lock()
	was := h.writes
	h.writes = nil
	h.mu.Unlock()
	if was != nil {
		s.logger.Info("store writes succeed again", "db", s.path, "was", was.err().Error())
	}
}

// Health returns why the store is not ready (nil when it is: no I/O error
// or damage seen since its last check) and why its writes fail (nil when
// the last one did not fail for a full or read-only disk).
func (s *Store) Health() (failing, writes error) {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failing.err(), h.writes.err()
}

// dropIdleReaders closes the idle read connections, so the next reads load
// pages from the file rather than from a connection's cache.
func (s *Store) dropIdleReaders() {
	s.read.SetMaxIdleConns(0)
	s.read.SetMaxIdleConns(sqlitefile.ReadIdle)
}

// kick wakes the re-check loop.
func (s *Store) kick() {
	select {
	case s.recheckNow <- struct{}{}:
	default:
	}
}

// recheckLoop checks the file again, with a connection of its own, every
// recheckEvery while the store is failing (and once to the end when the
// start check ran out of time); a check that passes makes it ready again.
func (s *Store) recheckLoop(ctx context.Context, every time.Duration) {
	defer close(s.recheckDone)
	if s.health.unchecked {
		s.recheck(ctx, -1)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.recheckNow:
			// Let the failure settle (a burst of requests) before looking.
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		case <-tick.C:
		}
		if failing, _ := s.Health(); failing != nil {
			s.recheck(ctx, s.checkTimeout)
		}
	}
}

// recheck runs sqlitefile.CheckFile and records what it found.
func (s *Store) recheck(ctx context.Context, timeout time.Duration) {
	problem, _, unfinished, err := sqlitefile.CheckFile(ctx, s.path, timeout)
	if err != nil || unfinished {
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("store re-check failed", "db", s.path, "err", err)
		}
		return
	}
	h := &s.health
	h.mu.Lock()
	was := h.failing
	h.unchecked = false
	if problem != "" {
		if h.failing == nil {
			h.failing = &failure{class: sqlitefile.ClassCorrupt, since: time.Now().UTC()}
		}
		h.failing.reason = problem
	} else {
		h.failing = nil
	}
	h.mu.Unlock()
	switch {
	case problem != "":
		s.errorsTotal.WithLabelValues(s.name, string(sqlitefile.ClassCorrupt)).Inc()
		s.logger.Error("store is damaged", "db", s.path, "class", string(sqlitefile.ClassCorrupt), "problem", problem,
			"what_to_do", sqlitefile.Remedy(s.path, s.checkOpts, "damaged"))
	case was != nil:
		s.dropIdleReaders()
		s.logger.Info("store passed its re-check and is ready again", "db", s.path, "was", was.err().Error())
	}
}

// SetMaxPages caps the file at n pages (0: the pages it holds now), as a
// disk quota would: a write that needs more fails with SQLite's own
// SQLITE_FULL. Tests fill a "disk" with it without root or a tmpfs. It
// returns the cap.
func (s *Store) SetMaxPages(ctx context.Context, n int64) (int64, error) {
	if n == 0 {
		if err := s.write.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&n); err != nil {
			return 0, err
		}
	}
	_, err := s.write.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, n))
	return n, err
}
