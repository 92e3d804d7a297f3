package consulagent_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/testenv/consulagent"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
)

func TestArgs(t *testing.T) {
	t.Parallel()
	got := consulagent.Options{
		HTTPPort: 1, ServerPort: 2, SerfLANPort: 3, SerfWANPort: 4, NodeName: "xian", Dir: "/d",
	}.Args()
	for _, want := range [][]string{
		{"agent", "-server", "-bootstrap-expect", "1"},
		{"-data-dir", "/d/data"},
		{"-config-file", "/d/agent.hcl"},
		{"-bind", "127.0.0.1"},
		{"-client", "127.0.0.1"},
		{"-http-port", "1"},
		{"-server-port", "2"},
		{"-serf-lan-port", "3"},
		{"-serf-wan-port", "4"},
		{"-grpc-port", "-1"},
		{"-grpc-tls-port", "-1"},
		{"-dns-port", "-1"},
		{"-node", "xian"},
	} {
		if !containsSeq(got, want) {
			t.Errorf("Args() = %v, missing %v", got, want)
		}
	}
	if slices.Contains(got, "-dev") {
		t.Errorf("Args() = %v: a -dev agent forgets its state when it stops", got)
	}
}

// TestNoSecretInArgs: the management token is in the agent's
// configuration file (mode 0600), never on its command line, where every
// local user could read it.
func TestNoSecretInArgs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := consulagent.New(consulagent.Options{Bin: "consul", HTTPPort: 1, ServerPort: 2, SerfLANPort: 3, SerfWANPort: 4, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(a.ManagementTokenFile())
	if err != nil || len(strings.TrimSpace(string(token))) < 36 {
		t.Fatalf("management token file: %q, %v", token, err)
	}
	if args := strings.Join(a.Options().Args(), " "); strings.Contains(args, strings.TrimSpace(string(token))) {
		t.Errorf("the management token is on the command line: %s", args)
	}
	for _, name := range []string{a.ManagementTokenFile(), filepath.Join(dir, "agent.hcl")} {
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (err %v), want 0600", name, fi.Mode().Perm(), err)
		}
	}
	// The same directory keeps the same token.
	b, err := consulagent.New(consulagent.Options{Bin: "consul", HTTPPort: 1, ServerPort: 2, SerfLANPort: 3, SerfWANPort: 4, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(b.ManagementTokenFile()); string(again) != string(token) {
		t.Error("a second New on the same Dir made a new management token")
	}
}

func containsSeq(s, seq []string) bool {
	for i := 0; i+len(seq) <= len(s); i++ {
		if slices.Equal(s[i:i+len(seq)], seq) {
			return true
		}
	}
	return false
}

// TestNewNamesTheBadOption breaks each required option of a valid set in
// turn: the error must name it, so a launcher's caller knows what to fix.
func TestNewNamesTheBadOption(t *testing.T) {
	t.Parallel()
	valid := consulagent.Options{Bin: "consul", HTTPPort: 1, ServerPort: 2, SerfLANPort: 3, SerfWANPort: 4, Dir: t.TempDir()}
	if _, err := consulagent.New(valid); err != nil {
		t.Fatalf("New(%+v) = %v", valid, err)
	}
	breakers := map[string]func(*consulagent.Options){
		"Bin":         func(o *consulagent.Options) { o.Bin = "" },
		"Dir":         func(o *consulagent.Options) { o.Dir = "" },
		"HTTPPort":    func(o *consulagent.Options) { o.HTTPPort = 0 },
		"ServerPort":  func(o *consulagent.Options) { o.ServerPort = -1 },
		"SerfLANPort": func(o *consulagent.Options) { o.SerfLANPort = 70000 },
		"SerfWANPort": func(o *consulagent.Options) { o.SerfWANPort = 0 },
	}
	for option, breakIt := range breakers {
		opts := valid
		breakIt(&opts)
		if _, err := consulagent.Launch(t.Context(), opts); err == nil || !strings.Contains(err.Error(), option) {
			t.Errorf("Launch with a bad %s: error = %v, want one naming it", option, err)
		}
	}
}

func TestFindBinaryFromEnv(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "consul")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(consulagent.BinEnv, notExec)
	if _, err := consulagent.FindBinary(t.Context(), nil); err == nil {
		t.Fatal("FindBinary accepted a non-executable file")
	}
	if err := os.Chmod(notExec, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := consulagent.FindBinary(t.Context(), nil); err != nil || got != notExec {
		t.Fatalf("FindBinary = %q, %v; want %q", got, err, notExec)
	}
}

// TestLaunchReportsPortInUse checks what consultest relies on to retry,
// and that a port held by someone else (say, a stale agent) is never
// mistaken for our agent being ready.
func TestLaunchReportsPortInUse(t *testing.T) {
	t.Parallel()
	bin := findBinary(t)
	port := holdPort(t)
	free := freePorts(t, 3)

	a, err := consulagent.Launch(t.Context(), consulagent.Options{
		Bin: bin, HTTPPort: port, ServerPort: free[0], SerfLANPort: free[1], SerfWANPort: free[2], Dir: t.TempDir(),
	})
	if err == nil {
		_ = a.Kill()
		t.Fatal("Launch succeeded on a taken HTTP port")
	}
	if !errors.Is(err, consulagent.ErrPortInUse) || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("Launch error = %v, want ErrPortInUse naming port %d", err, port)
	}
}

// TestLaunchReportsExit checks that an agent dying at start-up is reported
// at once, with its log, instead of after the ready timeout, and that a
// death for any other reason than a taken port is not retried.
func TestLaunchReportsExit(t *testing.T) {
	t.Parallel()
	bin := findBinary(t)
	logPath := filepath.Join(t.TempDir(), "consul.log")
	start := time.Now()
	draws := 0
	choose := func(n int) ([]int, error) { draws++; return localproc.FreePorts(n) }
	err := launchFailure(t, consulagent.Options{
		Bin: bin, ExtraArgs: []string{"-no-such-flag"}, Dir: t.TempDir(),
		RunOptions: localproc.RunOptions{LogPath: logPath, ReadyTimeout: 20 * time.Second},
	}, choose)
	if !errors.Is(err, consulagent.ErrExited) || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("Launch error = %v, want ErrExited showing the agent's complaint", err)
	}
	if errors.Is(err, consulagent.ErrPortInUse) {
		t.Errorf("Launch error = %v, taken for a port in use", err)
	}
	if draws != 1 {
		t.Errorf("ports drawn %d times for an agent that cannot start at all, want 1", draws)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Launch took %v to notice the agent exited", d)
	}
}

// TestLaunchRecognisesBindFailure makes the agent bind a port no check
// before start knows of (its DNS server, on a port the test holds): the
// launcher must read the failure from the agent's exit and log, since that
// is the race no check before start can close, draw fresh ports for it, and
// give up after a bounded number of attempts when the port stays taken.
func TestLaunchRecognisesBindFailure(t *testing.T) {
	t.Parallel()
	bin := findBinary(t)
	held := holdPort(t)
	draws := 0
	choose := func(n int) ([]int, error) { draws++; return localproc.FreePorts(n) }
	err := launchFailure(t, consulagent.Options{
		Bin: bin, ExtraArgs: []string{"-dns-port", strconv.Itoa(held)}, Dir: t.TempDir(),
		RunOptions: localproc.RunOptions{LogPath: filepath.Join(t.TempDir(), "consul.log"), KillWithParent: true},
	}, choose)
	if !errors.Is(err, consulagent.ErrExited) || !errors.Is(err, consulagent.ErrPortInUse) {
		t.Fatalf("Launch error = %v, want ErrExited and ErrPortInUse", err)
	}
	if draws != localproc.StartAttempts {
		t.Errorf("ports drawn %d times, want %d: every attempt found a port in use", draws, localproc.StartAttempts)
	}
}

// TestLaunchOnFreePortsRetries takes the first port drawn for the agent, as
// another process choosing ports at the same moment could, and checks the
// agent still comes up, on other ports.
func TestLaunchOnFreePortsRetries(t *testing.T) {
	t.Parallel()
	bin := findBinary(t)
	var held []int
	choose := func(n int) ([]int, error) {
		ports, err := localproc.FreePorts(n)
		if err == nil && len(held) == 0 {
			// Taken by us, or (if this fails) already by someone else:
			// either way the launcher must move on.
			if l, lerr := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))); lerr == nil {
				t.Cleanup(func() { l.Close() })
			}
			held = append(held, ports[0])
		}
		return ports, err
	}
	var retries int
	a, err := consulagent.LaunchOnFreePorts(t.Context(), consulagent.Options{Bin: bin, Dir: t.TempDir(), RunOptions: localproc.RunOptions{KillWithParent: true}}, choose,
		func(format string, args ...any) { retries++; t.Logf(format, args...) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Kill() })
	if retries == 0 || a.Options().HTTPPort == held[0] {
		t.Fatalf("agent on %s after %d retries; port %d was taken", a.HTTPAddr(), retries, held[0])
	}
	if _, err := a.Client().Agent().Self(); err != nil {
		t.Fatalf("agent on %s: %v", a.HTTPAddr(), err)
	}
}

// TestLaunchStop starts a real agent and stops it gracefully.
func TestLaunchStop(t *testing.T) {
	t.Parallel()
	bin := findBinary(t)
	a, err := consulagent.LaunchOnFreePorts(t.Context(), consulagent.Options{
		Bin: bin, NodeName: "launch-stop", Dir: t.TempDir(), RunOptions: localproc.RunOptions{KillWithParent: true},
	}, nil, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Kill() })
	if name, err := a.Client().Agent().NodeName(); err != nil || name != "launch-stop" {
		t.Fatalf("NodeName() = %q, %v; want launch-stop", name, err)
	}
	if _, err := a.Client().KV().Put(&api.KVPair{Key: "parkmesh/probe", Value: []byte("kept")}, nil); err != nil {
		t.Fatalf("KV put with the management token: %v", err)
	}
	anon, err := api.NewClient(&api.Config{Address: a.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	var se api.StatusError
	if _, err := anon.KV().Put(&api.KVPair{Key: "parkmesh/rogue", Value: []byte("x")}, nil); !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("anonymous KV put: %v, want 403 (ACLs on, default deny)", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("Done() open after Stop returned")
	}
	if err := a.Err(); err != nil {
		t.Errorf("Err() = %v after a requested stop, want nil", err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if a.Running() {
		t.Error("Running() after Stop")
	}
	if !a.Stopped() {
		t.Error("Stopped() false after Stop: a supervisor would take it for a crash")
	}
	// Started again, on the same ports, for the same clients.
	if err := a.Start(ctx); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if name, err := a.Client().Agent().NodeName(); err != nil || name != "launch-stop" {
		t.Fatalf("after a new Start, NodeName() = %q, %v; want launch-stop", name, err)
	}
	if a.Stopped() {
		t.Error("Stopped() true for the new start")
	}
	// Its state is on disk: the KV survived the restart.
	if pair, _, err := a.Client().KV().Get("parkmesh/probe", nil); err != nil || pair == nil || string(pair.Value) != "kept" {
		t.Fatalf("after a new Start, KV get = %v, %v; want the value put before", pair, err)
	}
}

// holdPort takes a loopback port for the rest of the test, as another
// process would, and returns it.
func holdPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// launchFailure launches an agent on ports drawn by choose that must not
// come up, and returns why it did not.
func launchFailure(t *testing.T, opts consulagent.Options, choose localproc.PortChooser) error {
	t.Helper()
	a, err := consulagent.LaunchOnFreePorts(t.Context(), opts, choose, t.Logf)
	if err == nil {
		_ = a.Kill()
		t.Fatalf("an agent came up on %s", a.HTTPAddr())
	}
	return err
}

// findBinary returns the Consul binary for a test that runs the agent; such
// tests are skipped with -short, and fail (never skip) without a binary.
func findBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("short: starts a real Consul agent")
	}
	bin, err := consulagent.FindBinary(t.Context(), os.Stderr)
	if err != nil {
		t.Fatalf("no Consul binary: %v", err)
	}
	return bin
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	// Below the ephemeral range, so no outgoing connection takes one before
	// the agent binds it (":0" ports come from that range).
	ports, err := localproc.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}
