// Package launcher starts one ParkMesh park on this machine the way a park's
// IT team runs a node on one VM: a Consul agent (a single-node server with
// its state under the park's data directory and ACLs on, default deny), one
// Consul token per process with only the rights it needs (deploy/consulacl,
// handed over in a file of mode 0600 named by PARKMESH_CONSUL_TOKEN_FILE,
// never on a command line), the three services (directory, project,
// talent) and the gateway, each a real process with its own log file,
// started in that order and each waited on until it serves; stopped gateway
// first and Consul last, or killed at once.
//
// It is the one park launcher: `make demo` (deploy/local) and the load tool
// (deploy/bench) run parks with it on fixed, documented ports, where a port
// in use is an error that names it; tests (deploy/testenv/nodetest) run
// parks on ports it draws, where a port taken between drawing and binding
// makes it draw again and start the process again, never a failure.
package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/consulagent"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// binaries are the deployables [Build] knows, by binary name.
var binaries = func() map[string]string {
	b := map[string]string{"gateway": "./gateway/cmd/gateway", "parkmesh": "./gateway/cmd/parkmesh"}
	for _, k := range listing.Kinds {
		b[k.Service()] = "./services/" + k.Service() + "/cmd/" + k.Service()
	}
	return b
}()

// ParkBinaries are the binaries a park's processes run (the kinds'
// services and the gateway); [Build] builds them when given no names.
var ParkBinaries = func() []string {
	var out []string
	for _, k := range listing.Kinds {
		out = append(out, k.Service())
	}
	return append(out, "gateway")
}()

// Build builds the named binaries (directory, project, talent, gateway,
// parkmesh; [ParkBinaries] when none are named) into dir, from the
// repository holding the working directory. The go tool's output goes to out.
func Build(ctx context.Context, dir string, out io.Writer, names ...string) error {
	if len(names) == 0 {
		names = ParkBinaries
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	repo, err := localproc.RepoRoot(wd)
	if err != nil {
		return fmt.Errorf("launcher: run inside the repository: %w", err)
	}
	for _, name := range names {
		pkg, ok := binaries[name]
		if !ok {
			return fmt.Errorf("launcher: no binary %q", name)
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = repo, out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("launcher: go build %s: %w", pkg, err)
		}
	}
	return nil
}

// FixedPorts pins where a park's first processes listen: the demo's
// documented ports. Processes started later (another service instance, a
// gateway replica) still get drawn ports.
type FixedPorts struct {
	// Consul holds the agent's HTTP, server RPC, serf LAN and serf WAN ports.
	Consul [4]int
	// Services holds each kind's service port.
	Services map[listing.Kind]int
	// Gateway is the gateway's park side (-listen), Federation its
	// federation side (-federation-listen).
	Gateway, Federation int
}

// Config describes one park.
type Config struct {
	// ID is the park id (-park).
	ID string
	// BinDir holds the directory, project, talent and gateway binaries
	// (see [Build]); ConsulBin is the Consul binary
	// ([consulagent.FindBinary]).
	BinDir, ConsulBin string
	// DataDir holds the park's keys, databases and Consul state (its data,
	// management token and the processes' tokens under DataDir/consul);
	// keys and tokens are made when missing, kept when there.
	DataDir string
	// LogDir receives one log file per process, named after the park and
	// the process (xian-hitech-gateway.log; a second instance adds -2),
	// appended to across starts.
	LogDir string
	// Ports, when set, pins the ports of the agent, the services and the
	// gateway: a port in use is then an error naming it (wrapping
	// [localproc.ErrAddrInUse]), since moving a documented port would
	// surprise whoever reads it. When nil, ports are drawn by Choose, and
	// drawn again for any process whose port turns out to be taken.
	Ports *FixedPorts
	// Choose draws ports; default [localproc.FreePorts]. Tests inject one
	// to prove the launcher copes with a port taken after the draw.
	Choose localproc.PortChooser
	// GatewayArgs are extra flags for every gateway (e.g. -breaker-open 1s).
	GatewayArgs []string
	// NameZH, NameEN and Country, when set, are the park's display names
	// and country (-park-name-zh, -park-name-en, -park-country).
	NameZH, NameEN, Country string
	// Env is added to the environment of the services and gateways (e.g.
	// OTEL_* variables).
	Env []string
	// ReadyTimeout bounds the wait for each process to serve and for the
	// gateway to see every service; default 60s.
	ReadyTimeout time.Duration
	// Logf, when set, is told of each process started again on fresh ports
	// (tests pass tb.Logf).
	Logf func(format string, args ...any)
}

// Proc is one process of a park: a service instance or a gateway.
type Proc struct {
	// Process gives PID, Done, Err, Stop, Kill and LogTail.
	*localproc.Process
	// Park is the id of the park it belongs to.
	Park string
	// Name is the binary: directory, project, talent or gateway.
	Name string
	// Addr is where it listens (a gateway's park side), host:port.
	Addr string
	// FederationAddr is a gateway's federation side ("" for services).
	FederationAddr string

	// relaunch starts the same process again on the same addresses (see
	// [Park.Restart]).
	relaunch func(ctx context.Context) (*Proc, error)
}

// Exited reports whether the process has ended.
func (pr *Proc) Exited() bool {
	select {
	case <-pr.Done():
		return true
	default:
		return false
	}
}

// Log returns the process's whole log file.
func (pr *Proc) Log() string {
	b, _ := os.ReadFile(pr.LogPath())
	return string(b)
}

// identityArgs are the gateway flags of the park's display names and
// country, for those set.
func (c Config) identityArgs() []string {
	var out []string
	for _, f := range []struct{ flag, v string }{{"-park-name-zh", c.NameZH}, {"-park-name-en", c.NameEN}, {"-park-country", c.Country}} {
		if f.v != "" {
			out = append(out, f.flag, f.v)
		}
	}
	return out
}

// Park is one running park. Its methods are safe for concurrent use.
type Park struct {
	// ID is the park id.
	ID string
	// DataDir holds its keys and databases.
	DataDir string
	// Keys is its signing key set.
	Keys *parkkey.KeySet
	// Agent is its Consul agent.
	Agent *consulagent.Agent

	cfg    Config
	exited chan *Proc

	mu       sync.Mutex
	gateway  *Proc
	services map[listing.Kind][]*Proc
	procs    []*Proc        // every process started, in order
	started  map[string]int // processes started per name, for log names
}

// Start starts the park: its Consul agent, keys, one instance of each
// service and the gateway, and returns once the gateway sees one instance
// of every kind. ctx bounds only the start: the processes run until
// [Park.Stop] or [Park.Kill]. On error, whatever was started is killed; the
// log files stay.
func Start(ctx context.Context, cfg Config) (*Park, error) {
	if cfg.ID == "" || cfg.BinDir == "" || cfg.ConsulBin == "" || cfg.DataDir == "" || cfg.LogDir == "" {
		return nil, errors.New("launcher: Config needs ID, BinDir, ConsulBin, DataDir and LogDir")
	}
	if cfg.Choose == nil {
		cfg.Choose = localproc.FreePorts
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	p := &Park{ID: cfg.ID, DataDir: cfg.DataDir, cfg: cfg, exited: make(chan *Proc, 64),
		services: map[listing.Kind][]*Proc{}, started: map[string]int{}}
	if err := p.start(ctx); err != nil {
		p.Kill()
		return nil, fmt.Errorf("park %s: %w", cfg.ID, err)
	}
	return p, nil
}

func (p *Park) start(ctx context.Context) error {
	ks, err := parkkey.Load(p.DataDir)
	if err != nil {
		if ks, err = parkkey.Init(p.DataDir, p.ID); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
	}
	p.Keys = ks
	if err := p.startAgent(ctx); err != nil {
		return err
	}
	want := map[listing.Kind]int{}
	for _, k := range listing.Kinds {
		if _, err := p.startService(ctx, k, p.DataDir, p.fixed(func(f *FixedPorts) []int { return []int{f.Services[k]} })); err != nil {
			return err
		}
		want[k] = 1
	}
	if _, err := p.primary(p.startGateway(ctx, p.fixed(func(f *FixedPorts) []int { return []int{f.Gateway, f.Federation} }))); err != nil {
		return err
	}
	return p.WaitInstances(ctx, want)
}

// fixed returns the configured ports pick chooses, nil when ports are drawn.
func (p *Park) fixed(pick func(*FixedPorts) []int) []int {
	if p.cfg.Ports == nil {
		return nil
	}
	return pick(p.cfg.Ports)
}

func (p *Park) startAgent(ctx context.Context) error {
	opts := consulagent.Options{
		Bin: p.cfg.ConsulBin, NodeName: p.ID, Dir: p.consulDir(),
		RunOptions: localproc.RunOptions{LogPath: p.logPath("consul", 1), ReadyTimeout: p.cfg.ReadyTimeout, KillWithParent: true},
	}
	var err error
	if f := p.cfg.Ports; f != nil {
		opts.HTTPPort, opts.ServerPort, opts.SerfLANPort, opts.SerfWANPort = f.Consul[0], f.Consul[1], f.Consul[2], f.Consul[3]
		p.Agent, err = consulagent.Launch(ctx, opts)
		err = fixedPortError(err, f.Consul[:])
	} else {
		p.Agent, err = consulagent.LaunchOnFreePorts(ctx, opts, p.cfg.Choose, p.cfg.Logf)
	}
	if err != nil {
		return fmt.Errorf("consul: %w", err)
	}
	if _, err := consulacl.Provision(ctx, p.Agent.Client(), consulacl.Options{Path: p.ConsulTokenFile, Park: p.ID}); err != nil {
		return fmt.Errorf("consul: %w", err)
	}
	return nil
}

// consulDir holds the agent's state and the processes' tokens.
func (p *Park) consulDir() string { return filepath.Join(p.DataDir, "consul") }

// ConsulTokenFile is the file holding the Consul token of process
// (directory, project, talent or gateway; see [consulacl.Processes]).
func (p *Park) ConsulTokenFile(process string) string {
	return consulacl.TokenPath(filepath.Join(p.consulDir(), "tokens"))(process)
}

// StartService starts one more instance of kind k's service, keeping its
// data in dataDir (the park's own, or another for a separate store), on a
// drawn port.
func (p *Park) StartService(ctx context.Context, k listing.Kind, dataDir string) (*Proc, error) {
	return p.startService(ctx, k, dataDir, nil)
}

func (p *Park) startService(ctx context.Context, k listing.Kind, dataDir string, fixed []int) (*Proc, error) {
	name := k.Service()
	pr, err := p.launch(ctx, name, fixed, 1, func(addrs []string) []string {
		return []string{"-listen", addrs[0], "-data-dir", dataDir, "-park", p.ID, "-consul", p.Agent.HTTPAddr()}
	})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.services[k] = append(p.services[k], pr)
	p.mu.Unlock()
	return pr, nil
}

// StartGateway starts a new gateway for the park on drawn ports and makes
// it the park's [Park.Gateway]; an earlier one keeps running.
func (p *Park) StartGateway(ctx context.Context) (*Proc, error) {
	return p.primary(p.startGateway(ctx, nil))
}

// StartReplica starts one more gateway of the park (same Consul, same
// keys), as a park running several replicas does; [Park.Gateway] stays.
func (p *Park) StartReplica(ctx context.Context) (*Proc, error) {
	return p.startGateway(ctx, nil)
}

// RestartGateway kills the park's gateway at once, as a crash would, and
// starts it again on the same addresses, where peers and clients know it.
// Those addresses are fixed from then on: one taken meanwhile is an error.
func (p *Park) RestartGateway(ctx context.Context) (*Proc, error) {
	old := p.Gateway()
	_ = old.Kill()
	return p.primary(p.startGateway(ctx, []int{port(old.Addr), port(old.FederationAddr)}))
}

// primary makes gw, when it started, the park's [Park.Gateway].
func (p *Park) primary(gw *Proc, err error) (*Proc, error) {
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.gateway = gw
	p.mu.Unlock()
	return gw, nil
}

func (p *Park) startGateway(ctx context.Context, fixed []int) (*Proc, error) {
	return p.launch(ctx, "gateway", fixed, 2, func(addrs []string) []string {
		return append([]string{"-listen", addrs[0], "-federation-listen", addrs[1], "-public-url", "http://" + addrs[1],
			"-data-dir", p.DataDir, "-park", p.ID, "-consul", p.Agent.HTTPAddr()}, append(p.cfg.identityArgs(), p.cfg.GatewayArgs...)...)
	})
}

// launch starts one service or gateway process listening on n addresses:
// the fixed ports when given, else drawn ones, drawn again while the process
// finds one taken. args builds its flags from its addresses (park side
// first, then federation side).
func (p *Park) launch(ctx context.Context, name string, fixed []int, n int, args func(addrs []string) []string) (*Proc, error) {
	p.mu.Lock()
	p.started[name]++
	instance := p.started[name]
	p.mu.Unlock()
	logPath := p.logPath(name, instance)
	once := func(ctx context.Context, ports []int) (*Proc, error) {
		addrs := make([]string, n)
		for i := range addrs {
			addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))
		}
		pr := &Proc{Park: p.ID, Name: name, Addr: addrs[0]}
		if n > 1 {
			pr.FederationAddr = addrs[1]
		}
		env := append(slices.Clone(p.cfg.Env), "PARKMESH_CONSUL_TOKEN_FILE="+p.ConsulTokenFile(name))
		proc, err := localproc.Launch(ctx, localproc.Spec{
			Name: p.ID + " " + name, Bin: filepath.Join(p.cfg.BinDir, name), Args: args(addrs), Env: env,
			Ready:      func(ctx context.Context, proc *localproc.Process) error { return serving(ctx, proc.PID(), addrs) },
			RunOptions: localproc.RunOptions{LogPath: logPath, ReadyTimeout: p.cfg.ReadyTimeout, KillWithParent: true},
		})
		if err != nil {
			return nil, err
		}
		pr.Process = proc
		return pr, nil
	}
	var pr *Proc
	var err error
	if fixed != nil {
		pr, err = once(ctx, fixed)
		err = fixedPortError(err, fixed)
	} else {
		logf := p.cfg.Logf
		if logf != nil {
			logf = func(format string, args ...any) { p.cfg.Logf(p.ID+" "+name+": "+format, args...) }
		}
		pr, err = localproc.OnFreePorts(p.cfg.Choose, n, logf, func(ports []int) (*Proc, error) { return once(ctx, ports) })
	}
	if err != nil {
		return nil, err
	}
	// A restart reuses the ports this start ended up with: peers, clients
	// and Consul know the process there.
	ports := []int{port(pr.Addr)}
	if n > 1 {
		ports = append(ports, port(pr.FederationAddr))
	}
	var relaunch func(ctx context.Context) (*Proc, error)
	relaunch = func(ctx context.Context) (*Proc, error) {
		np, err := once(ctx, ports)
		if err != nil {
			return nil, fixedPortError(err, ports)
		}
		np.relaunch = relaunch
		return np, nil
	}
	pr.relaunch = relaunch
	p.mu.Lock()
	p.procs = append(p.procs, pr)
	p.mu.Unlock()
	go p.watch(pr)
	return pr, nil
}

// Restart starts pr, a service or gateway of the park that has ended (a
// crash), again as it was: the same binary and flags, the same addresses,
// data directory, environment and Consul token, its output appended to the
// same log file (a header line marks the new start). The new process
// replaces pr in the park ([Park.Gateway], [Park.Services], [Park.Procs])
// and registers in Consul under the same service ID, which replaces the
// dead instance's entry. A port taken meanwhile is an error naming it;
// pr then stays in the park, ended, and Restart may be called again.
func (p *Park) Restart(ctx context.Context, pr *Proc) (*Proc, error) {
	if pr.relaunch == nil {
		return nil, fmt.Errorf("launcher: %s %s was not started by this park", pr.Park, pr.Name)
	}
	if !pr.Exited() {
		return nil, fmt.Errorf("launcher: %s %s (pid %d) is still running", pr.Park, pr.Name, pr.PID())
	}
	np, err := pr.relaunch(ctx)
	if err != nil {
		return nil, fmt.Errorf("park %s: restart %s: %w", p.ID, pr.Name, err)
	}
	p.mu.Lock()
	if i := slices.Index(p.procs, pr); i >= 0 {
		p.procs[i] = np
	} else {
		p.procs = append(p.procs, np)
	}
	for k, list := range p.services {
		if i := slices.Index(list, pr); i >= 0 {
			p.services[k][i] = np
		}
	}
	if p.gateway == pr {
		p.gateway = np
	}
	p.mu.Unlock()
	go p.watch(np)
	return np, nil
}

// serving is the readiness probe of a service or gateway: the process
// itself holds each of its addresses (an answer from another process on a
// port ours failed to bind must not count), and its park side answers
// /healthz. Without /proc to read, the answer alone has to do.
func serving(ctx context.Context, pid int, addrs []string) error {
	for _, addr := range addrs {
		ok, err := localproc.Listening(pid, port(addr))
		if errors.Is(err, localproc.ErrCannotTell) {
			break
		}
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("not listening on %s yet", addr)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addrs[0]+"/healthz", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	return nil
}

// fixedPortError makes a port in use among fixed ports say which one and
// what to do about it; the error still wraps [localproc.ErrAddrInUse].
func fixedPortError(err error, ports []int) error {
	if err == nil || !errors.Is(err, localproc.ErrAddrInUse) {
		return err
	}
	which := "a fixed port is in use"
	if cerr := localproc.CheckPorts("tcp", "127.0.0.1", ports...); cerr != nil {
		which = "a fixed port is in use (" + cerr.Error() + ")"
	}
	return fmt.Errorf("%s; another demo or bench still running? choose other base ports: %w", which, err)
}

func (p *Park) logPath(name string, instance int) string {
	base := p.ID + "-" + name
	if instance > 1 {
		base += "-" + strconv.Itoa(instance)
	}
	return filepath.Join(p.cfg.LogDir, base+".log")
}

// watch reports the process on [Park.Exited] if it ends without having been
// asked to.
func (p *Park) watch(pr *Proc) {
	<-pr.Done()
	if pr.Stopped() {
		return
	}
	select {
	case p.exited <- pr:
	default:
	}
}

// Exited delivers every service or gateway process that ended without being
// stopped or killed through the launcher: a crash while the park was meant
// to run.
func (p *Park) Exited() <-chan *Proc { return p.exited }

// Gateway returns the park's gateway (the latest started by Start,
// StartGateway or RestartGateway).
func (p *Park) Gateway() *Proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gateway
}

// GatewayURL is the park side of the park's gateway: staff API, portal,
// health and metrics.
func (p *Park) GatewayURL() string { return "http://" + p.Gateway().Addr }

// FederationURL is the federation side of the park's gateway, the URL its
// peers use (and its -public-url).
func (p *Park) FederationURL() string { return "http://" + p.Gateway().FederationAddr }

// Services returns the service instances started for kind k, in order.
func (p *Park) Services(k listing.Kind) []*Proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Proc(nil), p.services[k]...)
}

// Procs returns every service and gateway process started, in order.
func (p *Park) Procs() []*Proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Proc(nil), p.procs...)
}

// PIDs returns the process ids of the park's agent and every process
// started.
func (p *Park) PIDs() []int {
	pids := []int{p.Agent.PID()}
	for _, pr := range p.Procs() {
		pids = append(pids, pr.PID())
	}
	return pids
}

// Token issues a park-local token with role for subject, valid for ttl.
func (p *Park) Token(role parktoken.Role, subject string, ttl time.Duration) (string, error) {
	return parktoken.Issue(p.Keys, p.ID, subject, role, ttl, time.Now())
}

// Instances returns how many healthy instances of each kind the park's
// gateway sees, from its /readyz.
func (p *Park) Instances(ctx context.Context) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.GatewayURL()+"/readyz", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var body struct{ Instances map[string]int }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("gateway /readyz: %s: %w", res.Status, err)
	}
	if res.StatusCode != http.StatusOK {
		return body.Instances, fmt.Errorf("gateway /readyz: %s", res.Status)
	}
	return body.Instances, nil
}

// WaitInstances waits until the gateway sees exactly want[k] healthy
// instances of each kind k in want, or ReadyTimeout (or ctx) ends.
func (p *Park) WaitInstances(ctx context.Context, want map[listing.Kind]int) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	var got map[string]int
	var err error
	for {
		if got, err = p.Instances(ctx); err == nil {
			ok := true
			for k, n := range want {
				ok = ok && got[string(k)] == n
			}
			if ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gateway sees instances %v (%v), want %v: %w", got, err, want, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the park as an operator would: SIGTERM to the gateways, then
// to the services (each deregisters from Consul and drains), then the
// agent. Whatever has not exited when ctx ends is killed. It is
// idempotent.
func (p *Park) Stop(ctx context.Context) error {
	var errs []error
	procs := p.Procs()
	for _, tier := range []func(*Proc) bool{
		func(pr *Proc) bool { return pr.Name == "gateway" },
		func(pr *Proc) bool { return pr.Name != "gateway" },
	} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, pr := range procs {
			if !tier(pr) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := stopProc(ctx, pr); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	if p.Agent != nil {
		if err := p.Agent.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopProc stops one process, reporting one it had to kill.
func stopProc(ctx context.Context, pr *Proc) error {
	running := !pr.Exited()
	if err := pr.Stop(ctx); err != nil {
		return err
	}
	var exit *exec.ExitError
	if running && ctx.Err() != nil && errors.As(pr.ExitErr(), &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return fmt.Errorf("%s %s (pid %d) did not stop in time; killed", pr.Name, pr.Addr, pr.PID())
		}
	}
	return nil
}

// Kill kills every process of the park at once (the agent too), as a
// machine losing power would, and waits until they are gone: the quick end
// for tests. It is idempotent.
func (p *Park) Kill() {
	for _, pr := range p.Procs() {
		_ = pr.Kill()
	}
	if p.Agent != nil {
		_ = p.Agent.Kill()
	}
}

// port returns the port of a host:port address (0 when it has none).
func port(addr string) int {
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(ps)
	return n
}
