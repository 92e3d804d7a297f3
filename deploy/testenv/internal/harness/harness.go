// Package harness holds what the testing.TB harnesses of the test
// environment (consultest, jaegertest, nodetest) share: finding a tool for
// a test, and owning the processes a test starts for its whole life.
package harness

import (
	"context"
	"io"
	"os"
	"testing"
	"time"
)

// stopTimeout bounds a graceful shutdown at the end of a test before the
// process is killed.
const stopTimeout = 5 * time.Second

// startTimeout bounds one start, retries on fresh ports included; the
// first start on a machine may also wait for a tool's build lock.
const startTimeout = 3 * time.Minute

// SkipShort skips the test when -short asks for the quick loop: starting
// real processes is not quick. Without -short nothing is skipped.
func SkipShort(tb testing.TB, what string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("short: starts " + what)
	}
}

// Binary returns a tool's binary for a test that runs it, found by find
// (which may build it; progress goes to stderr). With -short it skips the
// test; without a binary it fails the test, never skips, so CI cannot pass
// without having run it. hint says how to provide one.
func Binary(tb testing.TB, tool, hint string, find func(context.Context, io.Writer) (string, error)) string {
	tb.Helper()
	SkipShort(tb, "a real "+tool)
	bin, err := find(tb.Context(), os.Stderr)
	if err != nil {
		tb.Fatalf("no %s binary, so no real %s to test against (%s): %v", tool, tool, hint, err)
	}
	return bin
}

// Proc is a process a test owns.
type Proc interface {
	Stop(ctx context.Context) error
	LogPath() string
	LogTail(n int) string
}

// Own makes p the test's: when the test and its subtests end, the end of
// p's log is logged if the test failed, then p is stopped (gracefully,
// killed after a few seconds).
func Own(tb testing.TB, tool string, p Proc) {
	tb.Cleanup(func() {
		// The tail is taken before stopping: shutdown noise would bury what
		// the process was doing when the test failed.
		if tb.Failed() && p.LogPath() != "" {
			tb.Logf("last lines of the %s log %s:\n%s", tool, p.LogPath(), p.LogTail(40))
		}
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		_ = p.Stop(ctx) // it only fails when even SIGKILL does; nothing to do then
	})
}

// Start runs launch for the test, bounded by a few minutes, fails the test
// if it fails, and owns what it started (see [Own]).
func Start[P Proc](tb testing.TB, tool string, launch func(context.Context) (P, error)) P {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), startTimeout)
	defer cancel()
	p, err := launch(ctx)
	if err != nil {
		tb.Fatalf("%s: %v", tool, err)
	}
	Own(tb, tool, p)
	return p
}
