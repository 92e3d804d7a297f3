// Package consulagent starts and stops a real Consul agent process: the
// single-node server (bootstrap_expect 1) that a ParkMesh park node uses for
// its catalog and KV store on a laptop, in the demo launcher and in tests.
// It keeps its state on disk, in its own directory, so a restart forgets
// nothing (a -dev agent forgets every registration and every peering), and
// runs with ACLs on, default deny: its management token is generated at the
// first start and kept in a file of mode 0600 beside its data, and it is
// given its own agent token (deploy/consulacl). [Agent.Client] carries the
// management token; processes get their own tokens from deploy/consulacl.
//
// The agent binary is not vendored: [FindBinary] takes it from the
// PARKMESH_CONSUL_BIN environment variable or builds and caches it with the
// project's deploy/tools/install-consul.sh. [Launch] starts the agent on
// explicit loopback ports and returns once it has elected itself leader and
// its node is healthy in its own catalog, so callers can register services
// and query health straight away; [LaunchOnFreePorts] draws the ports and
// draws again when one turns out to be taken. An [Agent] keeps its ports
// for its whole life, so it can be stopped and started again where its
// clients expect it.
package consulagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"

	"github.com/hashicorp/consul/api"
)

// BinEnv names the environment variable that, when set, holds the path of
// the Consul binary to run; it wins over building one.
const BinEnv = "PARKMESH_CONSUL_BIN"

// installScript is the project script that builds (once) and prints the
// path of the pinned Consul binary, relative to the repository root.
const installScript = "deploy/tools/install-consul.sh"

// ErrExited reports that the agent process ended while it was starting.
// The error wraps it and carries the last lines of the agent's log.
var ErrExited = localproc.ErrExited

// ErrPortInUse reports that one of the agent's ports was taken: found so
// before start (often by an agent left over from an earlier run; nothing was
// started then) or by the agent exiting at start with a bind error. It is
// [localproc.ErrAddrInUse], the error [LaunchOnFreePorts] answers by
// drawing fresh ports.
var ErrPortInUse = localproc.ErrAddrInUse

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
	// Dir holds the agent's state, kept across restarts: Dir/data (its
	// -data-dir: catalog, KV, ACLs, the services registered with it),
	// Dir/agent.hcl (its configuration, which holds the initial management
	// token) and the token files Dir/management.token and Dir/agent.token,
	// all mode 0600. Required. An agent started again on the same Dir finds
	// everything as it was.
	Dir string
	// LogLevel is passed as -log-level; default "info".
	LogLevel string
	// ExtraArgs are appended to the command line after the options above.
	ExtraArgs []string
	// RunOptions: the log file ([Agent.LogTail] is empty without one), the
	// ready timeout, killing the agent with its launcher, the launcher's
	// logger.
	localproc.RunOptions
}

func (o *Options) withDefaults() error {
	if o.Dir == "" {
		return errors.New("consulagent: Options.Dir is required: the agent keeps its state there")
	}
	if err := localproc.CheckOptions(o.Bin,
		localproc.Port{Name: "HTTPPort", Number: o.HTTPPort}, localproc.Port{Name: "ServerPort", Number: o.ServerPort},
		localproc.Port{Name: "SerfLANPort", Number: o.SerfLANPort}, localproc.Port{Name: "SerfWANPort", Number: o.SerfWANPort},
	); err != nil {
		return fmt.Errorf("consulagent: %w", err)
	}
	o.fillDefaults()
	return nil
}

// fillDefaults sets the defaults [Options.Args] needs as well as Launch.
func (o *Options) fillDefaults() {
	if o.BindAddr == "" {
		o.BindAddr = "127.0.0.1"
	}
	if o.ClientAddr == "" {
		o.ClientAddr = "127.0.0.1"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
}

// checkPorts fails with ErrPortInUse when a port cannot be bound. The agent
// would exit on its own, but a stale agent still holding the HTTP port would
// answer the readiness probe in its place, which must never pass for ours.
func (o Options) checkPorts() error {
	if err := localproc.CheckPorts("tcp", o.ClientAddr, o.HTTPPort); err != nil {
		return err
	}
	if err := localproc.CheckPorts("tcp", o.BindAddr, o.ServerPort, o.SerfLANPort, o.SerfWANPort); err != nil {
		return err
	}
	return localproc.CheckPorts("udp", o.BindAddr, o.SerfLANPort, o.SerfWANPort)
}

// Files of an agent's Dir.
const (
	dataSubdir          = "data"
	configName          = "agent.hcl"
	managementTokenName = "management.token"
	agentTokenName      = "agent.token"
)

// Args returns the command-line arguments (without the binary) that Launch
// passes to consul for these options, after defaults are applied. No
// secret is among them: the management token is in the configuration
// file.
func (o Options) Args() []string {
	o.fillDefaults()
	args := []string{
		"agent", "-server", "-bootstrap-expect", "1",
		"-data-dir", filepath.Join(o.Dir, dataSubdir),
		"-config-file", filepath.Join(o.Dir, configName),
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
	return append(args, o.ExtraArgs...)
}

// agentConfig is the agent's configuration file: ACLs on, default deny,
// the agent token it is given kept across restarts, the initial management
// token; election timings of a single machine (as -dev has), so a restart
// has a leader again within a second or two.
func agentConfig(managementToken string) string {
	return `acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
  tokens {
    initial_management = "` + managementToken + `"
  }
}
performance {
  raft_multiplier = 1
}
disable_update_check = true
`
}

// ManagementTokenFile is the file holding the agent's management token
// (mode 0600): what an operator of the demo points CONSUL_HTTP_TOKEN_FILE
// at to use the consul CLI.
func (o Options) ManagementTokenFile() string { return filepath.Join(o.Dir, managementTokenName) }

// prepare makes the agent's directory and, at the first start, its
// management token, and writes its configuration.
func (o Options) prepare() (string, error) {
	if err := os.MkdirAll(filepath.Join(o.Dir, dataSubdir), 0o700); err != nil {
		return "", fmt.Errorf("consulagent: %w", err)
	}
	token, err := consulacl.ReadToken(o.ManagementTokenFile())
	if errors.Is(err, os.ErrNotExist) {
		token = consulacl.NewSecret()
		err = consulacl.WriteToken(o.ManagementTokenFile(), token)
	}
	if err != nil {
		return "", fmt.Errorf("consulagent: management token: %w", err)
	}
	if err := consulacl.WriteToken(filepath.Join(o.Dir, configName), agentConfig(token)); err != nil {
		return "", fmt.Errorf("consulagent: configuration: %w", err)
	}
	return token, nil
}

// Agent is one Consul agent on fixed ports, running or not: it can be
// stopped and started again where its clients expect it. Its methods are
// safe for concurrent use.
type Agent struct {
	opts   Options
	client *api.Client

	mu   sync.Mutex
	proc *localproc.Process // the latest start, or one never started
}

// New validates opts, prepares the agent's directory (its management token
// is made at the first call for a new Dir) and returns an agent that is not
// started yet, so clients can be pointed at [Agent.HTTPAddr] before
// [Agent.Start] brings it up (as when a park's processes start before its
// agent).
func New(opts Options) (*Agent, error) {
	if err := opts.withDefaults(); err != nil {
		return nil, err
	}
	token, err := opts.prepare()
	if err != nil {
		return nil, err
	}
	a := &Agent{opts: opts, proc: localproc.NotStarted("consul agent")}
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = a.HTTPAddr()
	cfg.Scheme = "http"
	cfg.Token, cfg.TokenFile = token, "" // the management token, whatever CONSUL_HTTP_TOKEN says
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consulagent: API client: %w", err)
	}
	a.client = client
	return a, nil
}

// Launch starts a Consul agent as described by opts and waits until it is
// ready: it has a leader, its ACL system answers to the management token,
// its own node's serf health check passes and it holds its agent token, so
// registrations, health queries and token creation work at once. ctx (and
// Options.ReadyTimeout) bound only this start-up wait: the agent outlives
// ctx and runs until [Agent.Stop] or [Agent.Kill]. If a port is taken, the
// error wraps [ErrPortInUse]; if the agent exits before it is ready, the
// error wraps [ErrExited] and shows the end of its log. On any error no
// agent is left running.
func Launch(ctx context.Context, opts Options) (*Agent, error) {
	a, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// LaunchOnFreePorts is [Launch] on ports drawn by choose
// ([localproc.FreePorts] when nil) in place of opts' four ports. When a
// port turns out to be taken, before start or by the agent's own bind, it
// draws fresh ports and launches again (at most [localproc.StartAttempts]
// times), so a port another process grabbed between choosing and binding
// never fails the caller. logf, when set, is told of each retry.
func LaunchOnFreePorts(ctx context.Context, opts Options, choose localproc.PortChooser, logf func(format string, args ...any)) (*Agent, error) {
	return localproc.OnFreePorts(choose, 4, logf, func(p []int) (*Agent, error) {
		opts.HTTPPort, opts.ServerPort, opts.SerfLANPort, opts.SerfWANPort = p[0], p[1], p[2], p[3]
		return Launch(ctx, opts)
	})
}

// Start starts the agent on its ports unless it runs, and waits until it is
// ready (see [Launch]). An agent started again finds its catalog, KV and
// ACLs as they were: they are in its Dir.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.proc.Done():
	default:
		return nil // running
	}
	if err := a.opts.checkPorts(); err != nil {
		return fmt.Errorf("consulagent: %w", err)
	}
	proc, err := localproc.Launch(ctx, localproc.Spec{
		Name:       "consul agent on " + a.HTTPAddr(),
		Bin:        a.opts.Bin,
		Args:       a.opts.Args(),
		Ready:      func(ctx context.Context, _ *localproc.Process) error { return a.ready(ctx) },
		RunOptions: a.opts.RunOptions,
	})
	if err != nil {
		return fmt.Errorf("consulagent: %w", err)
	}
	a.proc = proc
	if err := a.agentToken(ctx); err != nil {
		_ = proc.Kill()
		return fmt.Errorf("consulagent: %w", err)
	}
	return nil
}

// agentToken gives the agent its own token at its first start (it keeps
// it across restarts); later starts find it valid and only set it again.
func (a *Agent) agentToken(ctx context.Context) error {
	node := a.opts.NodeName
	if node == "" {
		var err error
		if node, err = a.client.Agent().NodeName(); err != nil {
			return err
		}
	}
	_, err := consulacl.ProvisionAgent(ctx, a.client, node, filepath.Join(a.opts.Dir, agentTokenName))
	return err
}

// Stop shuts the agent down gracefully (SIGTERM), killing it if ctx ends
// first, and waits until it is gone. It is idempotent.
func (a *Agent) Stop(ctx context.Context) error { return a.current().Stop(ctx) }

// Kill ends the agent at once (SIGKILL), as a crash would, and waits until
// it is gone. It is idempotent.
func (a *Agent) Kill() error { return a.current().Kill() }

// Restart stops the agent if it runs and starts it again on the same ports.
func (a *Agent) Restart(ctx context.Context) error {
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.Stop(stopCtx); err != nil {
		return err
	}
	return a.Start(ctx)
}

// Running reports whether the agent process is up.
func (a *Agent) Running() bool {
	select {
	case <-a.current().Done():
		return false
	default:
		return true
	}
}

func (a *Agent) current() *localproc.Process {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc
}

// PID returns the process id of the latest start (0 before the first).
func (a *Agent) PID() int { return a.current().PID() }

// Done returns a channel closed when the latest start of the agent has
// exited (already closed before the first start).
func (a *Agent) Done() <-chan struct{} { return a.current().Done() }

// Err returns why the latest start of the agent ended: nil while it runs or
// when it was stopped or killed on request, the exit error otherwise.
func (a *Agent) Err() error { return a.current().Err() }

// Stopped reports whether the latest start of the agent was asked to end
// (Stop, Kill, Restart), whether or not it has yet: a supervisor tells a
// crash from a requested stop by it.
func (a *Agent) Stopped() bool { return a.current().Stopped() }

func (a *Agent) ready(ctx context.Context) error {
	leader, err := a.client.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	// The agent is a cluster of one, so any passing serfHealth check is its
	// own node's. Until the leader has set up the ACL system the management
	// token is unknown, and this query fails.
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

// ManagementTokenFile is the file holding the agent's management token.
func (a *Agent) ManagementTokenFile() string { return a.opts.ManagementTokenFile() }

// Options returns the agent's options, defaults applied.
func (a *Agent) Options() Options { return a.opts }

// HTTPAddr returns the agent's HTTP API address as host:port, the form
// CONSUL_HTTP_ADDR and the api package expect.
func (a *Agent) HTTPAddr() string {
	return net.JoinHostPort(a.opts.ClientAddr, strconv.Itoa(a.opts.HTTPPort))
}

// Client returns an API client for the agent carrying its management
// token. It keeps working across a restart.
func (a *Agent) Client() *api.Client { return a.client }

// LogPath returns the file the agent logs to, appended across restarts
// ("" when its output is discarded).
func (a *Agent) LogPath() string { return a.opts.LogPath }

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
	return localproc.FindBinary(ctx, BinEnv, installScript, progress)
}
