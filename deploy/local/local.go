// Package local is the launcher behind `make demo`: it builds the ParkMesh
// binaries and runs several parks as local processes, each with its own
// Consul dev agent, three services and gateway, and stops them all cleanly.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parkmesh/parkmesh/deploy/local/sample"
	"github.com/parkmesh/parkmesh/deploy/testenv/consulagent"
	"github.com/parkmesh/parkmesh/deploy/testenv/jaegerserver"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// DemoParks are the parks `make demo` starts, in port order.
var DemoParks = []string{"xian-hitech", "chengdu-hitech", "siliconvalley-offshore"}

// Config says where the demo keeps its files and which ports it uses.
type Config struct {
	Root            string // binaries, data, logs and demo.json live here
	GatewayBasePort int    // park i's gateway listens on GatewayBasePort+i (park side)
	// FederationBasePort: park i's gateway federation side listens on
	// FederationBasePort+i (default GatewayBasePort+100).
	FederationBasePort int
	ServiceBasePort    int // park i's services on ServiceBasePort+10i+1..3
	ConsulBasePort     int // park i's agent on ConsulBasePort+10i..+3
	Parks              []string
	// Seed, when set, prepares a park's data directory before its services
	// start (the bench tool writes synthetic listings there).
	Seed func(park, dataDir string) error
	// GatewayArgs are extra flags for every gateway.
	GatewayArgs []string
	// JaegerPorts, when set, start a Jaeger (query HTTP, query gRPC, OTLP
	// gRPC, OTLP HTTP, health) every process exports its traces to. When
	// Jaeger cannot be built here the parks run without it.
	JaegerPorts []int
}

// ParkInfo is one park of demo.json.
type ParkInfo struct {
	ID             string `json:"id"`
	GatewayURL     string `json:"gateway_url"`
	FederationURL  string `json:"federation_url"`
	ConsulHTTPAddr string `json:"consul_http_addr"`
	AdminToken     string `json:"admin_token"`
}

// DemoFile is what the demo writes to <root>/demo.json once every park is up.
type DemoFile struct {
	Parks []ParkInfo `json:"parks"`
	// PIDs of every process the demo started, the launcher's first.
	PIDs []int `json:"pids"`
	// JaegerURL is the trace backend's query URL, when it runs.
	JaegerURL string `json:"jaeger_url,omitempty"`
}

var binaries = []struct{ name, pkg string }{
	{"directory", "./services/directory/cmd/directory"},
	{"project", "./services/project/cmd/project"},
	{"talent", "./services/talent/cmd/talent"},
	{"gateway", "./gateway/cmd/gateway"},
	{"parkmesh", "./gateway/cmd/parkmesh"},
}

// Cluster is a set of parks running as local processes.
type Cluster struct {
	Root  string
	Parks []ParkInfo
	// JaegerURL is the trace backend's query URL ("" without one).
	JaegerURL string
	g         *group
}

// Start builds the binaries and starts cfg.Parks, each with its own Consul
// agent, services and gateway, and waits until every gateway sees every
// kind. Seed, when set, runs for each park before its services start.
// The caller must Stop the cluster, also after an error.
func Start(ctx context.Context, cfg Config, out io.Writer) (*Cluster, error) {
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Root: root, g: &group{out: out}}
	for _, d := range []string{"bin", "data", "logs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o750); err != nil {
			return c, err
		}
	}
	wd, _ := os.Getwd()
	repo, err := consulagent.RepoRoot(wd)
	if err != nil {
		return c, fmt.Errorf("run inside the repository: %w", err)
	}
	fmt.Fprintln(out, "building binaries…")
	for _, b := range binaries {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(root, "bin", b.name), b.pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = repo, out, out
		if err := cmd.Run(); err != nil {
			return c, fmt.Errorf("go build %s: %w", b.pkg, err)
		}
	}
	consulBin, err := consulagent.FindBinary(ctx, out)
	if err != nil {
		return c, err
	}
	if len(cfg.JaegerPorts) == 5 {
		c.startJaeger(ctx, cfg.JaegerPorts, out)
	}
	for i, park := range cfg.Parks {
		if cfg.Seed != nil {
			if err := cfg.Seed(park, filepath.Join(root, "data", park)); err != nil {
				return c, fmt.Errorf("park %s: seed: %w", park, err)
			}
		}
		info, err := startPark(ctx, c.g, cfg, root, consulBin, i, park)
		if err != nil {
			return c, err
		}
		c.Parks = append(c.Parks, info)
	}
	for _, p := range c.Parks {
		if err := waitReady(ctx, p); err != nil {
			return c, fmt.Errorf("park %s: %w (logs in %s)", p.ID, err, filepath.Join(root, "logs"))
		}
	}
	return c, nil
}

// startJaeger launches the trace backend; without it the parks still run.
func (c *Cluster) startJaeger(ctx context.Context, ports []int, out io.Writer) {
	bin, err := jaegerserver.FindBinary(ctx, out)
	if err != nil {
		fmt.Fprintf(out, "Jaeger is not available on this machine (%v); running without a trace backend\n", err)
		return
	}
	j, err := jaegerserver.Launch(ctx, jaegerserver.Options{
		Bin: bin, QueryHTTPPort: ports[0], QueryGRPCPort: ports[1], OTLPGRPCPort: ports[2], OTLPHTTPPort: ports[3], HealthPort: ports[4],
		RunOptions: localproc.RunOptions{LogPath: filepath.Join(c.Root, "logs", "jaeger.log"), KillWithParent: true},
	})
	if err != nil {
		fmt.Fprintf(out, "Jaeger did not start (%v); running without a trace backend\n", err)
		return
	}
	c.g.jaeger = j
	c.g.env = append(j.ExporterEnv("grpc"), "OTEL_BSP_SCHEDULE_DELAY=500")
	c.JaegerURL = j.QueryURL()
}

// Stop stops every process: gateways, then services, then Consul agents.
func (c *Cluster) Stop() error { return c.g.stop() }

// PIDs of every process of the cluster.
func (c *Cluster) PIDs() []int { return c.g.pids() }

// Exited reports a process that ended while the cluster was meant to run.
func (c *Cluster) Exited() <-chan procExit { return c.g.exited }

// KillGateway kills park's gateway at once, as a crash would.
func (c *Cluster) KillGateway(park string) error {
	for _, p := range c.g.procs {
		if p.name == park+"-gateway" {
			p.cmd.Process.Kill()
			<-p.done
			return nil
		}
	}
	return fmt.Errorf("no gateway of %s", park)
}

// PeerAll makes every pair of parks peers through the admin CLI.
func (c *Cluster) PeerAll(ctx context.Context, out io.Writer) error {
	return peerAll(ctx, c.Root, c.Parks, out)
}

// Demo runs the parks until ctx is done, then stops everything it started.
func Demo(ctx context.Context, cfg Config, out io.Writer) (err error) {
	if len(cfg.Parks) == 0 {
		cfg.Parks = DemoParks
	}
	os.Remove(filepath.Join(cfg.Root, "demo.json"))
	c, err := Start(ctx, cfg, out)
	defer func() {
		if c == nil {
			return
		}
		fmt.Fprintln(out, "stopping…")
		if serr := c.Stop(); serr != nil && err == nil {
			err = serr
		}
		fmt.Fprintln(out, "stopped: no process left running")
	}()
	if err != nil {
		return err
	}
	root := c.Root
	demo := DemoFile{PIDs: []int{os.Getpid()}, Parks: c.Parks, JaegerURL: c.JaegerURL}
	for _, p := range demo.Parks {
		n, err := loadSample(ctx, p)
		if err != nil {
			return fmt.Errorf("park %s: loading sample data: %w", p.ID, err)
		}
		if n > 0 {
			fmt.Fprintf(out, "%s: loaded %d sample listings\n", p.ID, n)
		} else {
			fmt.Fprintf(out, "%s: keeping the data of an earlier run\n", p.ID)
		}
	}
	if err := c.PeerAll(ctx, out); err != nil {
		return err
	}
	demo.PIDs = append(demo.PIDs, c.PIDs()...)
	b, _ := json.MarshalIndent(demo, "", "  ")
	if err := os.WriteFile(filepath.Join(root, "demo.json"), b, 0o600); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nParkMesh demo is up:")
	for _, p := range demo.Parks {
		fmt.Fprintf(out, "  %-24s gateway %s   consul http://%s\n", p.ID, p.GatewayURL, p.ConsulHTTPAddr)
	}
	if c.JaegerURL != "" {
		fmt.Fprintf(out, "  traces (Jaeger query API)  %s/api/traces?service=parkmesh-gateway\n", c.JaegerURL)
	}
	fmt.Fprintf(out, "\nAdmin tokens are in %s. Try:\n", filepath.Join(root, "demo.json"))
	fmt.Fprintf(out, "  curl -H \"Authorization: Bearer $(jq -r '.parks[0].admin_token' %s)\" '%s/api/v1/search?scope=club&q=硅谷'\n",
		filepath.Join(root, "demo.json"), demo.Parks[0].GatewayURL)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
	select {
	case <-ctx.Done():
	case pe := <-c.Exited():
		return fmt.Errorf("%s exited unexpectedly: %v (see %s)", pe.name, pe.err, pe.log)
	}
	return nil
}

func startPark(ctx context.Context, g *group, cfg Config, root, consulBin string, i int, park string) (ParkInfo, error) {
	cp := cfg.ConsulBasePort + 10*i
	agent, err := consulagent.Launch(ctx, consulagent.Options{
		Bin: consulBin, NodeName: park, HTTPPort: cp, ServerPort: cp + 1, SerfLANPort: cp + 2, SerfWANPort: cp + 3,
		RunOptions: localproc.RunOptions{LogPath: filepath.Join(root, "logs", park+"-consul.log"), KillWithParent: true},
	})
	if err != nil {
		return ParkInfo{}, fmt.Errorf("park %s: consul: %w", park, err)
	}
	g.agents = append(g.agents, agent)
	dataDir := filepath.Join(root, "data", park)
	ks, err := parkkey.Load(dataDir)
	if err != nil {
		if ks, err = parkkey.Init(dataDir, park); err != nil {
			return ParkInfo{}, fmt.Errorf("park %s: keys: %w", park, err)
		}
	}
	token, err := parktoken.Issue(ks, park, "demo-admin", parktoken.Admin, 24*time.Hour, time.Now())
	if err != nil {
		return ParkInfo{}, err
	}
	common := []string{"-data-dir", dataDir, "-park", park, "-consul", agent.HTTPAddr()}
	for j, svc := range []string{"directory", "project", "talent"} {
		port := cfg.ServiceBasePort + 10*i + j + 1
		args := append([]string{"-listen", "127.0.0.1:" + strconv.Itoa(port)}, common...)
		if err := g.start(ctx, 1, park+"-"+svc, filepath.Join(root, "bin", svc), args, filepath.Join(root, "logs", park+"-"+svc+".log")); err != nil {
			return ParkInfo{}, err
		}
	}
	gw := cfg.GatewayBasePort + i
	fedBase := cfg.FederationBasePort
	if fedBase == 0 {
		fedBase = cfg.GatewayBasePort + 100
	}
	fed := "127.0.0.1:" + strconv.Itoa(fedBase+i)
	url := "http://127.0.0.1:" + strconv.Itoa(gw)
	args := append([]string{"-listen", "127.0.0.1:" + strconv.Itoa(gw), "-federation-listen", fed, "-public-url", "http://" + fed}, common...)
	args = append(args, cfg.GatewayArgs...)
	if err := g.start(ctx, 0, park+"-gateway", filepath.Join(root, "bin", "gateway"), args, filepath.Join(root, "logs", park+"-gateway.log")); err != nil {
		return ParkInfo{}, err
	}
	return ParkInfo{ID: park, GatewayURL: url, FederationURL: "http://" + fed, ConsulHTTPAddr: agent.HTTPAddr(), AdminToken: token}, nil
}

// waitReady waits until the park's gateway knows an instance of every kind.
func waitReady(ctx context.Context, p ParkInfo) error {
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		res, err := http.Get(p.GatewayURL + "/readyz")
		if err == nil {
			var body struct{ Instances map[string]int }
			json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			ok := res.StatusCode == 200
			for _, k := range listing.Kinds {
				ok = ok && body.Instances[string(k)] > 0
			}
			if ok {
				return nil
			}
			last = fmt.Sprintf("instances %v", body.Instances)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("gateway not ready after 60s: %s", last)
}

var kindPath = map[listing.Kind]string{listing.KindOrganization: "organizations", listing.KindProject: "projects", listing.KindTalent: "talent"}

// loadSample puts the park's sample data in through its gateway, unless the
// park already holds listings (a second demo keeps the first one's data).
func loadSample(ctx context.Context, p ParkInfo) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.GatewayURL+"/api/v1/search?limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+p.AdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	var page struct{ Results []json.RawMessage }
	json.NewDecoder(res.Body).Decode(&page)
	res.Body.Close()
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("search answered %d", res.StatusCode)
	}
	if len(page.Results) > 0 {
		return 0, nil
	}
	f, err := sample.Load(p.ID)
	if err != nil {
		return 0, err
	}
	h := http.Header{"Authorization": {"Bearer " + p.AdminToken}}
	return f.Post(ctx, http.DefaultClient, func(k listing.Kind) string { return p.GatewayURL + "/api/v1/" + kindPath[k] }, h)
}

// proc is one child process.
type proc struct {
	name, log string
	tier      int // stopped in increasing tier order: gateways (0) before services (1)
	cmd       *exec.Cmd
	done      chan struct{}
	err       error
}

type procExit struct {
	name, log string
	err       error
}

// group is every process the demo started.
type group struct {
	out    io.Writer
	procs  []*proc
	agents []*consulagent.Agent
	jaeger *jaegerserver.Server
	env    []string // added to every process's environment
	exited chan procExit
}

func (g *group) start(ctx context.Context, tier int, name, bin string, args []string, logPath string) error {
	if g.exited == nil {
		g.exited = make(chan procExit, 64)
	}
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), g.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group, so a terminal's Ctrl-C reaches only the launcher,
	// which then stops the children in order; killed with the launcher.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, tier: tier, cmd: cmd, done: make(chan struct{})}
	g.procs = append(g.procs, p)
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
		select {
		case g.exited <- procExit{name, logPath, p.err}:
		default:
		}
	}()
	return nil
}

func (g *group) pids() []int {
	var out []int
	for _, a := range g.agents {
		out = append(out, a.PID())
	}
	if g.jaeger != nil {
		out = append(out, g.jaeger.PID())
	}
	for _, p := range g.procs {
		out = append(out, p.cmd.Process.Pid)
	}
	return out
}

// stop sends SIGTERM tier by tier (gateways, then services), waits for each
// tier (killing what outlives 20 s), then stops the Consul agents.
func (g *group) stop() error {
	var errs []error
	for tier := 0; tier <= 1; tier++ {
		var tierProcs []*proc
		for _, p := range g.procs {
			if p.tier == tier {
				tierProcs = append(tierProcs, p)
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, p := range tierProcs {
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
				errs = append(errs, fmt.Errorf("%s did not stop within 20s; killed", p.name))
			}
		}
	}
	for _, a := range g.agents {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := a.Stop(ctx); err != nil && !strings.Contains(err.Error(), "signal") {
			errs = append(errs, err)
		}
		cancel()
	}
	if g.jaeger != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := g.jaeger.Stop(ctx); err != nil && !strings.Contains(err.Error(), "signal") {
			errs = append(errs, err)
		}
		cancel()
	}
	return errors.Join(errs...)
}

// peerAll makes every pair of parks peers, as park IT teams would: the
// admin CLI generates a token on one park and establishes it on the other.
func peerAll(ctx context.Context, root string, parks []ParkInfo, out io.Writer) error {
	cli := filepath.Join(root, "bin", "parkmesh")
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, cli, args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("parkmesh %s: %v: %s", strings.Join(args[:2], " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(stdout.String()), nil
	}
	for i, a := range parks {
		for _, b := range parks[i+1:] {
			peers, err := run("peering", "list", "--gateway", a.GatewayURL, "--admin-token", a.AdminToken)
			if err != nil {
				return err
			}
			if strings.Contains(peers, b.ID+" ") {
				continue
			}
			tok, err := run("peering", "generate-token", "--peer", b.ID, "--gateway", a.GatewayURL, "--admin-token", a.AdminToken)
			if err != nil {
				return err
			}
			if _, err := run("peering", "establish", "--token", tok, "--gateway", b.GatewayURL, "--admin-token", b.AdminToken); err != nil {
				return err
			}
			fmt.Fprintf(out, "peered %s with %s\n", a.ID, b.ID)
		}
	}
	return nil
}
