// Package consultest starts a real Consul agent for a test, the way
// Consul's own api tests do: one single-node dev agent per call, on free
// loopback ports, ready (leader elected, node healthy) before the test goes
// on, and killed when the test ends.
//
// There is deliberately no fake: anything about registration or discovery is
// tested against the agent ParkMesh runs in production. The binary comes
// from PARKMESH_CONSUL_BIN or deploy/tools/install-consul.sh (see
// [consulagent.FindBinary]); when neither yields one, the test fails rather
// than skips, so CI cannot pass without having run these tests.
package consultest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/testenv/consulagent"
)

// startAttempts is how often Start picks fresh ports when a port is taken
// or the agent dies at start-up, which almost always means another process
// took a port between the check and the agent's bind.
const startAttempts = 3

// stopTimeout bounds a graceful shutdown in Stop before the agent is killed.
const stopTimeout = 5 * time.Second

// Agent is a Consul dev agent owned by one test. It keeps its ports for its
// whole life, so a stopped agent can be started again where clients expect
// it. Its methods are safe for concurrent use.
type Agent struct {
	client *api.Client

	mu   sync.Mutex
	opts consulagent.Options
	proc *consulagent.Agent // nil while stopped
}

// Start starts a fresh Consul dev agent on free loopback ports and returns
// once it is ready. The agent is stopped when the test and its subtests
// finish; if the test failed, the last lines of the agent's log are logged.
// Start calls tb.Fatal when the binary cannot be found or built or the agent
// does not come up.
func Start(tb testing.TB) *Agent {
	tb.Helper()
	a := newAgent(tb)
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if err = a.launch(tb); err == nil {
			return a
		}
		if !errors.Is(err, consulagent.ErrExited) && !errors.Is(err, consulagent.ErrPortInUse) {
			break
		}
		tb.Logf("consultest: agent did not start (attempt %d/%d), retrying on new ports: %v", attempt, startAttempts, err)
		ports, perr := localproc.FreePorts(4)
		if perr != nil {
			tb.Fatalf("consultest: %v", perr)
		}
		a.setPorts(ports)
	}
	tb.Fatalf("consultest: %v", err)
	return nil
}

// NewStopped reserves ports and a log file for an agent but does not start
// it: clients pointed at [Agent.HTTPAddr] find nobody there until
// [Agent.Restart]. Use it to test code that must cope with an agent that is
// not up yet. Like Start, it fails the test when there is no binary.
func NewStopped(tb testing.TB) *Agent {
	tb.Helper()
	return newAgent(tb)
}

// newAgent finds the binary, picks ports and registers the cleanup.
func newAgent(tb testing.TB) *Agent {
	tb.Helper()
	bin, err := consulagent.FindBinary(tb.Context(), os.Stderr)
	if err != nil {
		tb.Fatalf("consultest: no Consul binary, so no real agent to test against "+
			"(set %s to a consul 1.21 binary or fix deploy/tools/install-consul.sh): %v",
			consulagent.BinEnv, err)
	}
	ports, err := localproc.FreePorts(4)
	if err != nil {
		tb.Fatalf("consultest: %v", err)
	}
	dir := tb.TempDir()
	a := &Agent{opts: consulagent.Options{
		Bin:            bin,
		NodeName:       "consultest",
		LogPath:        filepath.Join(dir, "consul.log"),
		LogLevel:       "info",
		KillWithParent: true,
	}}
	a.setPorts(ports)

	cfg := api.DefaultNonPooledConfig()
	cfg.Address = a.HTTPAddr()
	cfg.Scheme = "http"
	cfg.Token = "" // a dev agent has no ACLs; ignore CONSUL_HTTP_TOKEN
	if a.client, err = api.NewClient(cfg); err != nil {
		tb.Fatalf("consultest: API client: %v", err)
	}

	// Registered after TempDir, so it runs before the log file is removed.
	tb.Cleanup(func() {
		// The tail is taken before stopping: shutdown noise would bury
		// what the agent was doing when the test failed.
		if tb.Failed() {
			tb.Logf("consultest: last lines of the Consul agent log %s:\n%s", a.LogPath(), a.LogTail(40))
		}
		a.Stop()
	})
	return a
}

func (a *Agent) setPorts(p []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.opts.HTTPPort, a.opts.ServerPort, a.opts.SerfLANPort, a.opts.SerfWANPort = p[0], p[1], p[2], p[3]
}

// launch starts the agent process on the reserved ports unless it runs.
func (a *Agent) launch(tb testing.TB) error {
	tb.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(tb.Context(), 60*time.Second)
	defer cancel()
	proc, err := consulagent.Launch(ctx, a.opts)
	if err != nil {
		return err
	}
	a.proc = proc
	return nil
}

// HTTPAddr returns the agent's HTTP API address, "127.0.0.1:port". It stays
// the same across Stop and Restart.
func (a *Agent) HTTPAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.opts.HTTPPort))
}

// Client returns an API client for the agent; it keeps working across a
// restart.
func (a *Agent) Client() *api.Client { return a.client }

// Running reports whether the agent process is up (it may have crashed
// since; see the log).
func (a *Agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return false
	}
	select {
	case <-a.proc.Done():
		return false
	default:
		return true
	}
}

// Stop ends the agent (gracefully, then by force after a few seconds) and
// waits until it is gone. It is idempotent. A -dev agent keeps its catalog
// in memory only, so after Stop and Restart every registration is lost.
func (a *Agent) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_ = a.proc.Stop(ctx) // it only fails when even SIGKILL does; nothing to do then
	a.proc = nil
}

// Kill ends the agent at once (SIGKILL), as a crash would, and waits until
// it is gone. It is idempotent; [Agent.Restart] brings it back.
func (a *Agent) Kill() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return
	}
	_ = a.proc.Kill() // it only fails when the process cannot be signalled at all
	a.proc = nil
}

// Restart stops the agent if it runs and starts it again on the same ports,
// returning once it is ready; it also starts an agent made by
// [NewStopped]. The new agent has an empty catalog: whatever was registered
// must register again. It calls tb.Fatal when the agent does not come up.
func (a *Agent) Restart(tb testing.TB) {
	tb.Helper()
	a.Stop()
	if err := a.launch(tb); err != nil {
		tb.Fatalf("consultest: restart on %s: %v", a.HTTPAddr(), err)
	}
}

// LogPath returns the file the agent logs to (appended across restarts).
func (a *Agent) LogPath() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.opts.LogPath
}

// LogTail returns the last n lines of the agent's log.
func (a *Agent) LogTail(n int) string {
	return localproc.TailFile(a.LogPath(), n)
}
