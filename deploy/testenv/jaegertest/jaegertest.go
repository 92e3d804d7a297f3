// Package jaegertest starts a real Jaeger for a test: one in-memory Jaeger
// v2 per call, on free loopback ports, ready before the test goes on and
// stopped when it ends, so tracing is tested against the backend operators
// use rather than a fake.
//
// The binary comes from PARKMESH_JAEGER_BIN or is built and cached by
// deploy/tools/install-jaeger.sh (see [jaegerserver.FindBinary]). When
// neither yields one the test fails rather than skips, so CI cannot pass
// without having run it. Processes outside tests use [jaegerserver.Launch].
package jaegertest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/internal/harness"
	"github.com/parkmesh/parkmesh/deploy/testenv/jaegerserver"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
)

// Jaeger is a Jaeger process owned by one test; it has all of
// [jaegerserver.Server]'s methods (QueryURL, ExporterEnv, Traces, …).
type Jaeger struct {
	*jaegerserver.Server
}

// Start starts a fresh in-memory Jaeger on free loopback ports and returns
// once it is healthy and its query API answers. It is stopped when the test
// and its subtests finish; if the test failed, the end of Jaeger's log is
// logged. A port taken between choosing and binding makes it choose again,
// never fails the test. Start calls tb.Fatal when the binary cannot be found
// or built or Jaeger does not come up; building it the first time on a
// machine takes several minutes. With -short it skips the test.
func Start(tb testing.TB) *Jaeger {
	tb.Helper()
	opts := jaegerserver.Options{
		Bin: harness.Binary(tb, "Jaeger", "set "+jaegerserver.BinEnv+" to a jaeger v2.13 binary or fix deploy/tools/install-jaeger.sh",
			jaegerserver.FindBinary),
		RunOptions: localproc.RunOptions{LogPath: filepath.Join(tb.TempDir(), "jaeger.log"), KillWithParent: true},
	}
	return &Jaeger{harness.Start(tb, "Jaeger", func(ctx context.Context) (*jaegerserver.Server, error) {
		return jaegerserver.LaunchOnFreePorts(ctx, opts, nil, tb.Logf)
	})}
}

// WaitTrace polls Jaeger until it holds the trace with the given hex id and
// done accepts it (nil: any), and returns it. Jaeger stores spans a moment
// after they arrive and a trace's spans may arrive in several batches, so
// tests wait rather than query once. It calls tb.Fatal after timeout.
func (j *Jaeger) WaitTrace(tb testing.TB, traceID string, timeout time.Duration, done func(jaegerserver.Trace) error) jaegerserver.Trace {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(tb.Context(), 5*time.Second)
		tr, err := j.Trace(ctx, traceID)
		cancel()
		if err == nil && done != nil {
			err = done(tr)
		}
		if err == nil {
			return tr
		}
		last = err
		if time.Now().After(deadline) {
			tb.Fatalf("jaegertest: trace %s not as expected after %s: %v", traceID, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Parks returns the distinct parkmesh.park values of the processes that
// contributed spans to tr, an error naming a process that has none.
func Parks(tr jaegerserver.Trace) (map[string]bool, error) {
	parks := map[string]bool{}
	for _, s := range tr.Spans {
		p := tr.Processes[s.ProcessID]
		park := jaegerserver.Tag(p.Tags, "parkmesh.park")
		if park == "" {
			return nil, fmt.Errorf("span %s (%s) comes from %s with no parkmesh.park tag", s.SpanID, s.OperationName, p.ServiceName)
		}
		parks[park] = true
	}
	return parks, nil
}
