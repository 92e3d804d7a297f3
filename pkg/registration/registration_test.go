package registration_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
	"github.com/parkmesh/parkmesh/pkg/registration"
)

func TestRegistersWithPassingCheckAndDeregistersOnCancel(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	host, port := readyServer(t, http.StatusOK)
	svc := registration.Service{
		Name:      "project",
		ID:        registration.InstanceID("project", "xian", "node1", port),
		Address:   host,
		Port:      port,
		Tags:      []string{"parkmesh", "v1"},
		Meta:      map[string]string{"park": "xian", "version": "test"},
		CheckPath: "/readyz",
	}
	reg, logs := newRegistrar(t, agent.HTTPAddr(), svc, registration.WithToken(agent.ServiceToken(t, svc.Name)))
	run := startRun(t, reg)

	entry := waitPassing(t, agent.Client(), "project", svc.ID, 15*time.Second)
	if got, want := entry.Service.Address, host; got != want {
		t.Errorf("Address = %q, want %q", got, want)
	}
	if got, want := entry.Service.Port, port; got != want {
		t.Errorf("Port = %d, want %d", got, want)
	}
	for _, tag := range svc.Tags {
		if !slices.Contains(entry.Service.Tags, tag) {
			t.Errorf("Tags = %v, missing %q", entry.Service.Tags, tag)
		}
	}
	for k, want := range svc.Meta {
		if got := entry.Service.Meta[k]; got != want {
			t.Errorf("Meta[%q] = %q, want %q", k, got, want)
		}
	}
	var check *api.HealthCheck
	for _, c := range entry.Checks {
		if c.ServiceID == svc.ID {
			check = c
		}
	}
	if check == nil || check.Type != "http" || check.Status != api.HealthPassing {
		t.Fatalf("service check = %+v, want a passing http check", check)
	}
	if !reg.Registered() {
		t.Error("Registered() = false while the agent holds the service")
	}

	if err := run.stop(t, 5*time.Second); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	if _, _, err := agent.Client().Agent().Service(svc.ID, nil); !isNotFound(err) {
		t.Fatalf("agent still answers for %s after shutdown (err %v)", svc.ID, err)
	}
	waitFor(t, 5*time.Second, "service gone from the catalog", func() (bool, string) {
		inst, _, err := agent.Client().Catalog().Service("project", "", nil)
		return err == nil && len(inst) == 0, fmt.Sprintf("%d instances, err %v", len(inst), err)
	})
	if s, _ := reg.State(); s != registration.Deregistered {
		t.Errorf("State() = %v after shutdown, want %v", s, registration.Deregistered)
	}
	if n := logs.count(slog.LevelWarn, ""); n != 0 {
		t.Errorf("%d warnings logged on the happy path, want 0:\n%s", n, logs)
	}
}

func TestFailingCheckIsNotPassing(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	host, port := readyServer(t, http.StatusServiceUnavailable)
	svc := registration.Service{Name: "talent", ID: "talent-test-1", Address: host, Port: port}
	reg, _ := newRegistrar(t, agent.HTTPAddr(), svc, registration.WithCheckInterval(200*time.Millisecond), registration.WithToken(agent.ServiceToken(t, svc.Name)))
	startRun(t, reg)

	// The check starts critical; wait until it has actually run and seen
	// the 503. The agent's own view is asked: it syncs output-only changes
	// to the catalog lazily.
	waitFor(t, 10*time.Second, "the check to report the 503", func() (bool, string) {
		checks, err := agent.Client().Agent().ChecksWithFilter(`ServiceID == "talent-test-1"`)
		if err != nil || len(checks) != 1 {
			return false, fmt.Sprintf("%d checks, err %v", len(checks), err)
		}
		for _, c := range checks {
			return c.Status == api.HealthCritical && strings.Contains(c.Output, "503"), c.Status + ": " + c.Output
		}
		return false, ""
	})
	passing, _, err := agent.Client().Health().Service("talent", "", true, nil)
	if err != nil || len(passing) != 0 {
		t.Fatalf("passing instances = %d (err %v), want 0 while /readyz fails", len(passing), err)
	}
}

func TestReRegistersAfterAgentRestart(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	host, port := readyServer(t, http.StatusOK)
	svc := registration.Service{Name: "directory", ID: "directory-test-1", Address: host, Port: port}
	reg, logs := newRegistrar(t, agent.HTTPAddr(), svc, registration.WithToken(agent.ServiceToken(t, svc.Name))) // production defaults
	startRun(t, reg)
	waitPassing(t, agent.Client(), "directory", svc.ID, 15*time.Second)

	agent.Stop()
	waitFor(t, 10*time.Second, "the registrar to notice the agent is gone", func() (bool, string) {
		s, err := reg.State()
		return s == registration.Unreachable, fmt.Sprintf("state %v, err %v", s, err)
	})
	// Let it fail a few more times: each retry must stay quiet.
	waitFor(t, 10*time.Second, "repeated retries", func() (bool, string) {
		n := logs.count(slog.LevelDebug, "still unreachable")
		return n >= 2, fmt.Sprintf("%d retries", n)
	})

	agent.Restart(t) // same ports, same state: the agent still holds the service
	// As an agent that lost its state (or reaped the service while it was
	// critical) would, it forgets the service: the registrar must notice.
	if err := agent.Client().Agent().ServiceDeregister(svc.ID); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	waitFor(t, 10*time.Second, "the registrar to register again", func() (bool, string) {
		n := logs.count(slog.LevelInfo, "registered again")
		return n >= 1, fmt.Sprintf("%d re-registrations", n)
	})
	waitPassing(t, agent.Client(), "directory", svc.ID, 15*time.Second)
	t.Logf("passing again %v after the agent restarted", time.Since(restarted).Round(10*time.Millisecond))

	if n := logs.count(slog.LevelWarn, ""); n != 1 {
		t.Errorf("%d warnings for one outage, want exactly 1:\n%s", n, logs)
	}
	if n := logs.count(slog.LevelInfo, "registered again"); n != 1 {
		t.Errorf("%d re-registration messages, want 1:\n%s", n, logs)
	}
}

func TestRegistersOnceAgentComesUp(t *testing.T) {
	t.Parallel()
	agent := consultest.NewStopped(t)
	host, port := readyServer(t, http.StatusOK)
	svc := registration.Service{Name: "gateway", ID: "gateway-test-1", Address: host, Port: port}
	// No token can be made before the agent runs: the management token.
	reg, logs := newRegistrar(t, agent.HTTPAddr(), svc, registration.WithToken(agent.ManagementToken(t)))
	startRun(t, reg)

	waitFor(t, 10*time.Second, "retries against the absent agent", func() (bool, string) {
		s, _ := reg.State()
		n := logs.count(slog.LevelDebug, "still unreachable")
		return s == registration.Unreachable && n >= 2, fmt.Sprintf("state %v, %d retries", s, n)
	})
	if reg.Registered() {
		t.Fatal("Registered() = true with no agent")
	}

	agent.Restart(t)
	waitPassing(t, agent.Client(), "gateway", svc.ID, 15*time.Second)
	if n := logs.count(slog.LevelWarn, ""); n != 1 {
		t.Errorf("%d warnings, want exactly 1:\n%s", n, logs)
	}
	if n := logs.count(slog.LevelInfo, "registered with Consul"); n != 1 {
		t.Errorf("%d first-registration messages, want 1:\n%s", n, logs)
	}
}

func TestDeregisterStopsRun(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	host, port := readyServer(t, http.StatusOK)
	svc := registration.Service{Name: "project", ID: "project-test-dereg", Address: host, Port: port}
	reg, _ := newRegistrar(t, agent.HTTPAddr(), svc, registration.WithPollInterval(100*time.Millisecond), registration.WithToken(agent.ServiceToken(t, svc.Name)))
	run := startRun(t, reg)
	waitFor(t, 10*time.Second, "registration", func() (bool, string) {
		return reg.Registered(), "not yet"
	})

	if err := reg.Deregister(t.Context()); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if err := run.wait(t, 5*time.Second); err != nil {
		t.Fatalf("Run returned %v after Deregister, want nil", err)
	}
	// Run must not have slipped a registration in after Deregister.
	if _, _, err := agent.Client().Agent().Service(svc.ID, nil); !isNotFound(err) {
		t.Fatalf("agent still answers for %s after Deregister (err %v)", svc.ID, err)
	}
	if err := reg.Deregister(t.Context()); err != nil {
		t.Fatalf("second Deregister: %v, want nil", err)
	}
}

func TestShutdownDoesNotHangOnDeadAgent(t *testing.T) {
	t.Parallel()
	agent := consultest.NewStopped(t) // never started: nothing listens there
	svc := registration.Service{Name: "project", ID: "project-test-dead", Address: "127.0.0.1", Port: 9}
	reg, _ := newRegistrar(t, agent.HTTPAddr(), svc, registration.WithDeregisterTimeout(500*time.Millisecond))
	run := startRun(t, reg)
	waitFor(t, 10*time.Second, "unreachable state", func() (bool, string) {
		s, _ := reg.State()
		return s == registration.Unreachable, s.String()
	})
	start := time.Now()
	if err := run.stop(t, 5*time.Second); err == nil {
		t.Fatal("Run returned nil though the agent could not be told to deregister")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v against a dead agent", d)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	ok := registration.Service{Name: "project", Address: "127.0.0.1", Port: 8081}
	tests := []struct {
		name string
		svc  func(registration.Service) registration.Service
		opts []registration.Option
		want string // substring of the error; "" means no error
	}{
		{"valid", func(s registration.Service) registration.Service { return s }, nil, ""},
		{"no name", func(s registration.Service) registration.Service { s.Name = ""; return s }, nil, "Name"},
		{"no address", func(s registration.Service) registration.Service { s.Address = ""; return s }, nil, "Address"},
		{"unspecified address", func(s registration.Service) registration.Service { s.Address = "0.0.0.0"; return s }, nil, "unspecified"},
		{"port zero", func(s registration.Service) registration.Service { s.Port = 0; return s }, nil, "Port"},
		{"port too big", func(s registration.Service) registration.Service { s.Port = 70000; return s }, nil, "Port"},
		{"slash in id", func(s registration.Service) registration.Service { s.ID = "a/b"; return s }, nil, "ID"},
		{"bad backoff", func(s registration.Service) registration.Service { return s },
			[]registration.Option{registration.WithBackoff(time.Second, time.Millisecond)}, "backoff"},
		{"zero interval", func(s registration.Service) registration.Service { return s },
			[]registration.Option{registration.WithCheckInterval(0)}, "check interval"},
		{"bad check url", func(s registration.Service) registration.Service { return s },
			[]registration.Option{registration.WithCheckURL("readyz")}, "check URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := registration.New("127.0.0.1:1", tt.svc(ok), nil, tt.opts...)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("New: %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("New error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestDefaultID(t *testing.T) {
	t.Parallel()
	reg, err := registration.New("127.0.0.1:1", registration.Service{
		Name: "project", Address: "127.0.0.1", Port: 8081, Meta: map[string]string{"park": "chengdu"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id := reg.ServiceID(); !strings.HasPrefix(id, "project-chengdu-") || !strings.HasSuffix(id, "-8081") {
		t.Fatalf("ServiceID() = %q, want project-chengdu-<host>-8081", id)
	}
}

func TestInstanceID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, park, host string
		port             int
		want             string
	}{
		{"project", "xian", "vm1", 8081, "project-xian-vm1-8081"},
		{"talent", "lanzhou", "node-2.park.local", 9000, "talent-lanzhou-node-2.park.local-9000"},
		{"gateway", "", "vm1", 8443, "gateway-vm1-8443"},
		{"directory", "成都", "my host/x", 1, "directory----my-host-x-1"},
	}
	for _, tt := range tests {
		if got := registration.InstanceID(tt.name, tt.park, tt.host, tt.port); got != tt.want {
			t.Errorf("InstanceID(%q, %q, %q, %d) = %q, want %q", tt.name, tt.park, tt.host, tt.port, got, tt.want)
		}
	}
}

func TestAgentAddr(t *testing.T) {
	// Not parallel: it sets the environment.
	tests := []struct {
		flag, env, want string
	}{
		{"", "", registration.DefaultAgentAddr},
		{"", "10.0.0.5:8500", "10.0.0.5:8500"},
		{"127.0.0.1:18500", "10.0.0.5:8500", "127.0.0.1:18500"},
		{"https://consul.park:8501", "", "https://consul.park:8501"},
	}
	for _, tt := range tests {
		t.Setenv(registration.AgentAddrEnv, tt.env)
		if got := registration.AgentAddr(tt.flag); got != tt.want {
			t.Errorf("AgentAddr(%q) with %s=%q = %q, want %q", tt.flag, registration.AgentAddrEnv, tt.env, got, tt.want)
		}
	}
}

func TestStateString(t *testing.T) {
	t.Parallel()
	for s, want := range map[registration.State]string{
		registration.Unregistered: "unregistered",
		registration.Registered:   "registered",
		registration.Unreachable:  "unreachable",
		registration.Deregistered: "deregistered",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

// --- helpers ---

// readyServer starts an HTTP server on 127.0.0.1 whose /readyz answers
// status, and returns its host and port.
func readyServer(tb testing.TB, status int) (string, int) {
	tb.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	host, portStr, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		tb.Fatal(err)
	}
	return host, port
}

func newRegistrar(tb testing.TB, addr string, svc registration.Service, opts ...registration.Option) (*registration.Registrar, *logRecorder) {
	tb.Helper()
	logs := &logRecorder{}
	reg, err := registration.New(addr, svc, slog.New(logs), opts...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("registrar log:\n%s", logs)
		}
	})
	return reg, logs
}

// running is a Run call in progress.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
	err    error         // Run's result, valid once done is closed
}

// startRun calls reg.Run in a goroutine; the test's cleanup cancels it and
// waits for it to return.
func startRun(tb testing.TB, reg *registration.Registrar) *running {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = reg.Run(ctx)
		close(r.done)
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			tb.Error("Run did not return within 10s of cancel")
		}
	})
	return r
}

// wait waits for Run to return on its own and returns its result.
func (r *running) wait(tb testing.TB, limit time.Duration) error {
	tb.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(limit):
		tb.Fatalf("Run did not return within %v", limit)
		return nil
	}
}

// stop cancels Run and returns its result, failing if it takes too long.
func (r *running) stop(tb testing.TB, limit time.Duration) error {
	tb.Helper()
	r.cancel()
	return r.wait(tb, limit)
}

// waitPassing waits until the service instance id is among name's passing
// instances and returns its entry.
func waitPassing(tb testing.TB, c *api.Client, name, id string, limit time.Duration) *api.ServiceEntry {
	tb.Helper()
	var found *api.ServiceEntry
	waitFor(tb, limit, "a passing "+name+" instance "+id, func() (bool, string) {
		entries, _, err := c.Health().Service(name, "", true, nil)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range entries {
			if e.Service.ID == id {
				found = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d passing instances", len(entries))
	})
	return found
}

// waitFor polls cond every 50ms until it holds or limit passes; last says
// what cond saw, for the failure message.
func waitFor(tb testing.TB, limit time.Duration, what string, cond func() (ok bool, last string)) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s (last: %s)", limit, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isNotFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// logRecorder is a slog.Handler that keeps every record for assertions.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

// WithAttrs and WithGroup share the store and drop the attributes: the
// tests assert on levels and messages only.
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how many records have exactly level and contain substr.
func (l *logRecorder) count(level slog.Level, substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level && strings.Contains(r.Message, substr) {
			n++
		}
	}
	return n
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.records {
		fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		b.WriteByte('\n')
	}
	return b.String()
}
