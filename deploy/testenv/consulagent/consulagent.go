// Package consulagent starts and stops a real Consul agent process: the
// single-node, in-memory `consul agent -dev` that a ParkMesh park node uses
// for its catalog and KV store on a laptop, in the demo launcher and in
// tests.
//
// The agent binary is not vendored: [FindBinary] takes it from the
// PARKMESH_CONSUL_BIN environment variable or builds and caches it with the
// project's deploy/tools/install-consul.sh. [Launch] starts the agent on
// explicit loopback ports and returns once it has elected itself leader and
// its node is healthy in its own catalog, so callers can register services
// and query health straight away.
package consulagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"

	"github.com/hashicorp/consul/api"
)

// BinEnv names the environment variable that, when set, holds the path of
// the Consul binary to run; it wins over building one.
const BinEnv = "PARKMESH_CONSUL_BIN"

// installScript is the project script that builds (once) and prints the
// path of the pinned Consul binary, relative to the repository root.
const installScript = "deploy/tools/install-consul.sh"

// ErrExited reports that the agent process ended while [Launch] was waiting
// for it to become ready, typically because a port was already taken. The
// returned error wraps it and carries the last lines of the agent's log.
var ErrExited = errors.New("consul agent exited")

// ErrPortInUse reports that one of the agent's ports could not be bound
// before start, often by an agent left over from an earlier run. Nothing
// was started.
var ErrPortInUse = errors.New("consul agent port in use")

// Options describes one agent. Bin and the four TCP ports are required; the
// gRPC, gRPC-TLS, HTTPS and DNS listeners are always disabled because
// ParkMesh uses none of them and each would be one more port to collide on.
type Options struct {
	// Bin is the path of the consul executable, see [FindBinary].
	Bin string
	// NodeName is passed as -node. Empty keeps Consul's default, the host
	// name; give each agent on one machine its own name in the logs.
	NodeName string
	// Datacenter is passed as -datacenter when set (Consul's default: dc1).
	Datacenter string
	// BindAddr is the cluster (serf and server RPC) address; default 127.0.0.1.
	BindAddr string
	// ClientAddr is where the HTTP API listens; default 127.0.0.1.
	ClientAddr string
	// HTTPPort is the HTTP API port (Consul's default is 8500).
	HTTPPort int
	// ServerPort is the server RPC port (Consul's default is 8300).
	ServerPort int
	// SerfLANPort is the LAN gossip port, TCP and UDP (default 8301).
	SerfLANPort int
	// SerfWANPort is the WAN gossip port, TCP and UDP (default 8302).
	SerfWANPort int
	// DataDir, when set, is passed as -data-dir. A -dev agent still keeps
	// its catalog and KV in memory, but then persists its node ID and the
	// services registered with it, so they come back after a restart. Leave
	// it empty for an agent that forgets everything when it stops.
	DataDir string
	// LogPath, when set, is a file the agent's stdout and stderr are
	// appended to (created with its parent directory if missing). When
	// empty the agent's output is discarded and [Agent.LogTail] is empty.
	LogPath string
	// LogLevel is passed as -log-level; default "info".
	LogLevel string
	// ExtraArgs are appended to the command line after the options above.
	ExtraArgs []string
	// ReadyTimeout bounds how long Launch waits for the agent to become
	// ready, on top of the caller's context; default 30s.
	ReadyTimeout time.Duration
	// KillWithParent asks the kernel to kill the agent when the process
	// that started it dies (Linux only; ignored elsewhere), so a crashed
	// test binary does not leave agents holding ports. Go delivers the
	// signal when the OS thread that started the agent exits, which the Go
	// runtime does only in rare cases, so prefer it for tests and short-lived
	// launchers.
	KillWithParent bool
	// Logger receives the launcher's own messages (not the agent's log);
	// nil discards them.
	Logger *slog.Logger
}

func (o *Options) withDefaults() error {
	if o.Bin == "" {
		return errors.New("consulagent: Options.Bin is empty")
	}
	ports := []struct {
		name string
		port int
	}{
		{"HTTPPort", o.HTTPPort},
		{"ServerPort", o.ServerPort},
		{"SerfLANPort", o.SerfLANPort},
		{"SerfWANPort", o.SerfWANPort},
	}
	for _, p := range ports {
		if p.port <= 0 || p.port > 65535 {
			return fmt.Errorf("consulagent: Options.%s %d is not a TCP port", p.name, p.port)
		}
	}
	if o.BindAddr == "" {
		o.BindAddr = "127.0.0.1"
	}
	if o.ClientAddr == "" {
		o.ClientAddr = "127.0.0.1"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// checkPorts fails with ErrPortInUse when a port cannot be bound. The agent
// would exit on its own, but a stale agent still holding the HTTP port would
// answer the readiness probe in its place, which must never pass for ours.
func (o Options) checkPorts() error {
	type port struct {
		network, host string
		port          int
	}
	for _, p := range []port{
		{"tcp", o.ClientAddr, o.HTTPPort},
		{"tcp", o.BindAddr, o.ServerPort},
		{"tcp", o.BindAddr, o.SerfLANPort},
		{"udp", o.BindAddr, o.SerfLANPort},
		{"tcp", o.BindAddr, o.SerfWANPort},
		{"udp", o.BindAddr, o.SerfWANPort},
	} {
		addr := net.JoinHostPort(p.host, strconv.Itoa(p.port))
		var c io.Closer
		var err error
		if p.network == "tcp" {
			c, err = net.Listen("tcp", addr)
		} else {
			c, err = net.ListenPacket("udp", addr)
		}
		if err != nil {
			return fmt.Errorf("%w: %s %s: %v", ErrPortInUse, p.network, addr, err)
		}
		_ = c.Close()
	}
	return nil
}

// Args returns the command-line arguments (without the binary) that Launch
// passes to consul for these options, after defaults are applied.
func (o Options) Args() []string {
	if o.BindAddr == "" {
		o.BindAddr = "127.0.0.1"
	}
	if o.ClientAddr == "" {
		o.ClientAddr = "127.0.0.1"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	args := []string{
		"agent", "-dev",
		"-bind", o.BindAddr,
		"-client", o.ClientAddr,
		"-http-port", strconv.Itoa(o.HTTPPort),
		"-server-port", strconv.Itoa(o.ServerPort),
		"-serf-lan-port", strconv.Itoa(o.SerfLANPort),
		"-serf-wan-port", strconv.Itoa(o.SerfWANPort),
		"-https-port", "-1",
		"-grpc-port", "-1",
		"-grpc-tls-port", "-1",
		"-dns-port", "-1",
		"-log-level", o.LogLevel,
	}
	if o.NodeName != "" {
		args = append(args, "-node", o.NodeName)
	}
	if o.Datacenter != "" {
		args = append(args, "-datacenter", o.Datacenter)
	}
	if o.DataDir != "" {
		args = append(args, "-data-dir", o.DataDir)
	}
	return append(args, o.ExtraArgs...)
}

// Agent is one running (or stopped) Consul agent process started by
// [Launch]. Its methods are safe for concurrent use.
type Agent struct {
	// Process gives PID, Done, Err, Stop and Kill.
	*localproc.Process
	opts   Options
	client *api.Client
	logf   *os.File // nil when Options.LogPath is empty
}

// Launch starts a Consul dev agent as described by opts and waits until it
// is ready: it has a leader and its own node's serf health check passes, so
// registrations and health queries work at once. ctx (and
// Options.ReadyTimeout) bound only this start-up wait: the agent outlives
// ctx and runs until [Agent.Stop] or [Agent.Kill]. If a port cannot be
// bound beforehand, the error wraps [ErrPortInUse]; if the agent exits
// before it is ready, the error wraps [ErrExited] and shows the end of its
// log. On any error no agent is left running.
func Launch(ctx context.Context, opts Options) (*Agent, error) {
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	if err := opts.checkPorts(); err != nil {
		return nil, err
	}
	a := &Agent{opts: opts}

	cfg := api.DefaultNonPooledConfig()
	cfg.Address = a.HTTPAddr()
	cfg.Scheme = "http"
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consulagent: API client: %w", err)
	}
	a.client = client

	out := io.Discard
	if opts.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(opts.LogPath), 0o755); err != nil {
			return nil, fmt.Errorf("consulagent: log directory: %w", err)
		}
		f, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("consulagent: log file: %w", err)
		}
		fmt.Fprintf(f, "==> parkmesh consulagent %s: starting %s %s\n",
			time.Now().Format(time.RFC3339), opts.Bin, strings.Join(opts.Args(), " "))
		a.logf, out = f, f
	}

	// Not exec.CommandContext: the agent must outlive the start-up context.
	cmd := exec.Command(opts.Bin, opts.Args()...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Stdin = nil
	if opts.KillWithParent {
		setKillWithParent(cmd)
	}
	proc, err := localproc.StartProcess(cmd, "consul agent", opts.Logger, a.closeLog)
	if err != nil {
		a.closeLog()
		return nil, fmt.Errorf("consulagent: start %s: %w", opts.Bin, err)
	}
	a.Process = proc
	opts.Logger.Debug("consul agent started", "pid", a.PID(), "http_addr", a.HTTPAddr())

	readyCtx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	if err := a.waitReady(readyCtx); err != nil {
		_ = a.Kill()
		return nil, err
	}
	opts.Logger.Info("consul agent ready", "pid", a.PID(), "http_addr", a.HTTPAddr())
	return a, nil
}

func (a *Agent) closeLog() {
	if a.logf != nil {
		_ = a.logf.Close()
	}
}

// waitReady polls the HTTP API until the agent has a leader and its own node
// is healthy in the catalog (the same two waits as Consul's own API tests).
func (a *Agent) waitReady(ctx context.Context) error {
	exited, last := a.WaitReady(ctx, a.ready)
	switch {
	case exited:
		return fmt.Errorf("%w before it was ready (%v)%s", ErrExited, a.ExitErr(), a.tailForError())
	case last != nil:
		return fmt.Errorf("consulagent: agent on %s not ready: %w (last: %v)%s",
			a.HTTPAddr(), ctx.Err(), last, a.tailForError())
	}
	return nil
}

func (a *Agent) ready(ctx context.Context) error {
	leader, err := a.client.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	// A dev agent is a cluster of one, so any passing serfHealth check is
	// its own node's.
	checks, _, err := a.client.Health().State(api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return err
	}
	for _, c := range checks {
		if c.CheckID == "serfHealth" {
			return nil
		}
	}
	return errors.New("node not healthy in the catalog yet")
}

func (a *Agent) tailForError() string {
	if a.opts.LogPath == "" {
		return ""
	}
	return "\nlast lines of " + a.opts.LogPath + ":\n" + a.LogTail(30)
}

// Options returns the options the agent was launched with, defaults applied.
// Launching them again starts an agent on the same ports.
func (a *Agent) Options() Options { return a.opts }

// HTTPAddr returns the agent's HTTP API address as host:port, the form
// CONSUL_HTTP_ADDR and the api package expect.
func (a *Agent) HTTPAddr() string {
	return net.JoinHostPort(a.opts.ClientAddr, strconv.Itoa(a.opts.HTTPPort))
}

// Client returns an API client for the agent. It keeps working across a
// restart of an agent on the same ports.
func (a *Agent) Client() *api.Client { return a.client }

// LogTail returns the last n lines of the agent's log file, or "" when the
// agent has no log file or it cannot be read. Use it to explain a failure.
func (a *Agent) LogTail(n int) string {
	if a.opts.LogPath == "" {
		return ""
	}
	return localproc.TailFile(a.opts.LogPath, n)
}

// FindBinary returns the path of the Consul binary to run: the value of
// PARKMESH_CONSUL_BIN when set (it must be an executable file), otherwise
// what deploy/tools/install-consul.sh prints (it builds and caches the
// pinned Consul version the first time, which takes several minutes). The
// script's progress messages go to progress (nil discards them).
func FindBinary(ctx context.Context, progress io.Writer) (string, error) {
	bin, err := localproc.FindBinary(ctx, BinEnv, installScript, progress)
	if err != nil {
		return "", fmt.Errorf("consulagent: %w", err)
	}
	return bin, nil
}

// RepoRoot walks up from dir to the nearest directory containing go.mod.
func RepoRoot(dir string) (string, error) { return localproc.RepoRoot(dir) }
