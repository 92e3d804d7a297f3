// Package local is the launcher behind `make demo`: it builds the ParkMesh
// binaries and runs several parks as local processes on fixed ports, each
// started by [launcher.Start] (its own Consul agent, with ACLs on and its
// state under the park's data directory, three services and gateway),
// loads the sample data, peers the parks and stops them all cleanly. A
// second run finds the first one's listings, Consul state and peerings.
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
	"strings"
	"sync"
	"time"

	"github.com/parkmesh/parkmesh/deploy/local/sample"
	"github.com/parkmesh/parkmesh/deploy/testenv/consulagent"
	"github.com/parkmesh/parkmesh/deploy/testenv/jaegerserver"
	"github.com/parkmesh/parkmesh/deploy/testenv/launcher"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
	"github.com/parkmesh/parkmesh/pkg/listing"
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
	// JaegerPorts, when set, are a Jaeger's ports (query HTTP, query gRPC,
	// OTLP gRPC, OTLP HTTP, health). Every process gets the OTLP endpoint
	// from its start; Jaeger is found (built the first time), started in
	// the background, and traces arrive once it is up. When Jaeger cannot
	// be had the parks run without it.
	JaegerPorts []int
	// JaegerInstall is a command (no arguments) whose last line of output
	// is the path of the Jaeger binary, run in the background; empty:
	// PARKMESH_JAEGER_BIN when set, else deploy/tools/install-jaeger.sh
	// (see [jaegerserver.FindBinary]).
	JaegerInstall string
	// Restart says how crashed services, gateways, Consul agents and
	// Jaeger are started again; zero fields take [DefaultRestartPolicy]'s.
	Restart RestartPolicy
	// Unsupervised leaves a crashed process down: the bench kills a peer's
	// gateway to measure the club with a dead peer, which a restart a
	// second later would end.
	Unsupervised bool
}

// ParkInfo is one park of demo.json.
type ParkInfo struct {
	ID             string `json:"id"`
	GatewayURL     string `json:"gateway_url"`
	FederationURL  string `json:"federation_url"`
	ConsulHTTPAddr string `json:"consul_http_addr"`
	// ConsulTokenFile holds the agent's management token (mode 0600): for
	// the consul CLI, CONSUL_HTTP_TOKEN_FILE=<it>. Each process has its
	// own token beside it (tokens/<process>/consul.token).
	ConsulTokenFile string `json:"consul_token_file"`
	AdminToken      string `json:"admin_token"`
	// PortalPasswordFile holds the password of the portal account
	// PortalUser (mode 0600).
	PortalPasswordFile string `json:"portal_password_file"`
}

// DemoFile is what the demo writes to <root>/demo.json once every park is
// up, and again when a process was restarted or Jaeger came up.
type DemoFile struct {
	Parks []ParkInfo `json:"parks"`
	// PIDs of every process the demo runs, the launcher's first.
	PIDs []int `json:"pids"`
	// JaegerURL is the trace backend's query URL, once it runs.
	JaegerURL string `json:"jaeger_url,omitempty"`
}

// Cluster is a set of parks running as local processes. It starts a
// crashed service, gateway, Consul agent or Jaeger again (see
// [RestartPolicy]) and says so on its console.
type Cluster struct {
	Root  string
	Parks []ParkInfo

	cfg     Config
	out     *console
	parks   []*launcher.Park
	env     []string // added to every process's environment
	gaveUp  chan *launcher.Proc
	bgCtx   context.Context // ends at Stop: restarts and Jaeger's start
	cancel  context.CancelFunc
	bg      sync.WaitGroup // supervisors and Jaeger's start and supervision
	stopped sync.Once

	mu        sync.Mutex
	jaeger    *jaegerserver.Server
	jaegerURL string
	onChange  func() // told of a restart and of Jaeger coming up
}

// ports returns park i's fixed ports: the demo documents its ports, so they
// do not move when one is taken (the launcher reports it instead).
func (cfg Config) ports(i int) *launcher.FixedPorts {
	cp, sp := cfg.ConsulBasePort+10*i, cfg.ServiceBasePort+10*i
	fed := cfg.FederationBasePort
	if fed == 0 {
		fed = cfg.GatewayBasePort + 100
	}
	return &launcher.FixedPorts{
		Consul: [4]int{cp, cp + 1, cp + 2, cp + 3},
		Services: map[listing.Kind]int{
			listing.KindOrganization: sp + 1, listing.KindProject: sp + 2, listing.KindTalent: sp + 3,
		},
		Gateway:    cfg.GatewayBasePort + i,
		Federation: fed + i,
	}
}

// jaegerOptions places Jaeger on cfg.JaegerPorts.
func (cfg Config) jaegerOptions(root string) jaegerserver.Options {
	p := cfg.JaegerPorts
	return jaegerserver.Options{
		QueryHTTPPort: p[0], QueryGRPCPort: p[1], OTLPGRPCPort: p[2], OTLPHTTPPort: p[3], HealthPort: p[4],
		RunOptions: localproc.RunOptions{LogPath: filepath.Join(root, "logs", "jaeger.log"), KillWithParent: true},
	}
}

// Start builds the binaries and starts cfg.Parks, each with its own Consul
// agent, services and gateway (see [launcher.Start]), and returns once
// every gateway sees every kind; Jaeger (with JaegerPorts) comes up in the
// background meanwhile or later. Seed, when set, runs for each park before
// its services start. out is the console: progress, restarts, Jaeger. The
// caller must Stop the cluster, also after an error.
func Start(ctx context.Context, cfg Config, out io.Writer) (*Cluster, error) {
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	cfg.Restart = cfg.Restart.withDefaults()
	c := &Cluster{Root: root, cfg: cfg, out: newConsole(out), gaveUp: make(chan *launcher.Proc, 64)}
	c.bgCtx, c.cancel = context.WithCancel(context.Background())
	for _, d := range []string{"bin", "data", "logs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o750); err != nil {
			return c, err
		}
	}
	c.out.say("building binaries…")
	if err := launcher.Build(ctx, filepath.Join(root, "bin"), c.out, append(launcher.ParkBinaries, "parkmesh")...); err != nil {
		return c, err
	}
	consulBin, err := consulagent.FindBinary(ctx, c.out)
	if err != nil {
		return c, err
	}
	if len(cfg.JaegerPorts) == 5 {
		// The exporters send over HTTP, one connection per export: they
		// reach Jaeger with their next batch once it is up, however long
		// its build took (see docs/decisions.md).
		c.env = append(cfg.jaegerOptions(root).ExporterEnv("http/protobuf"), "OTEL_BSP_SCHEDULE_DELAY=500")
		c.bg.Add(1)
		go c.runJaeger()
	}
	for i, id := range cfg.Parks {
		dataDir := filepath.Join(root, "data", id)
		if cfg.Seed != nil {
			if err := cfg.Seed(id, dataDir); err != nil {
				return c, fmt.Errorf("park %s: seed: %w", id, err)
			}
		}
		lcfg := launcher.Config{
			ID: id, BinDir: filepath.Join(root, "bin"), ConsulBin: consulBin, DataDir: dataDir,
			LogDir: filepath.Join(root, "logs"), Ports: cfg.ports(i), GatewayArgs: cfg.GatewayArgs, Env: c.env,
		}
		// The park's names and country for people, from its sample file.
		if f, err := sample.Load(id); err == nil {
			lcfg.NameZH, lcfg.NameEN, lcfg.Country = f.Park.NameZH, f.Park.Name, f.Park.Country
		}
		p, err := launcher.Start(ctx, lcfg)
		if err != nil {
			return c, fmt.Errorf("%w (logs in %s)", err, filepath.Join(root, "logs"))
		}
		c.parks = append(c.parks, p)
		if !cfg.Unsupervised {
			c.bg.Add(2)
			go c.supervise(p)
			go c.superviseAgent(p)
		}
		token, err := p.Token(parktoken.Admin, "demo-admin", 24*time.Hour)
		if err != nil {
			return c, err
		}
		c.Parks = append(c.Parks, ParkInfo{
			ID: id, GatewayURL: p.GatewayURL(), FederationURL: p.FederationURL(),
			ConsulHTTPAddr: p.Agent.HTTPAddr(), ConsulTokenFile: p.Agent.ManagementTokenFile(), AdminToken: token,
		})
	}
	return c, nil
}

// runJaeger finds Jaeger (building it the first time takes many minutes),
// starts it, says where its traces are and starts it again when it
// crashes; without it the parks still run.
func (c *Cluster) runJaeger() {
	defer c.bg.Done()
	ctx := c.bgCtx
	progress := c.out.lines()
	defer progress.Close()
	var bin string
	var err error
	if c.cfg.JaegerInstall != "" {
		c.out.say("jaeger: running %s in the background; the parks do not wait for it", c.cfg.JaegerInstall)
		bin, err = localproc.RunInstaller(ctx, c.cfg.JaegerInstall, "", progress)
	} else {
		bin, err = jaegerserver.FindBinary(ctx, progress)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		c.out.say("jaeger: not available on this machine (%v); the parks run without a trace backend", err)
		return
	}
	opts := c.cfg.jaegerOptions(c.Root)
	opts.Bin = bin
	j, err := jaegerserver.Launch(ctx, opts)
	if err != nil {
		if ctx.Err() == nil {
			c.out.say("jaeger: did not start (%v); the parks run without a trace backend", err)
		}
		return
	}
	c.mu.Lock()
	c.jaeger, c.jaegerURL = j, j.QueryURL()
	c.mu.Unlock()
	c.out.say("traces: %s/api/traces?service=parkmesh-gateway (Jaeger is up, pid %d; its log: %s)", j.QueryURL(), j.PID(), j.LogPath())
	c.changed()
	if c.cfg.Unsupervised {
		return
	}
	// A crashed Jaeger comes back on its ports, empty (it keeps traces in
	// memory); the exporters deliver to it with their next batch.
	c.keepUp("jaeger", j, func(ctx context.Context) (process, string, error) {
		c.mu.Lock()
		cur := c.jaeger
		c.mu.Unlock()
		nj, err := cur.Restart(ctx)
		if err != nil {
			return nil, "", err
		}
		c.mu.Lock()
		c.jaeger = nj
		c.mu.Unlock()
		return nj, nj.QueryURL(), nil
	})
}

// JaegerURL is the trace backend's query URL, "" until it runs.
func (c *Cluster) JaegerURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jaegerURL
}

// changed tells the demo that the processes or Jaeger changed.
func (c *Cluster) changed() {
	c.mu.Lock()
	f := c.onChange
	c.mu.Unlock()
	if f != nil {
		f()
	}
}

// Stop ends restarts and Jaeger's start, stops every park (all at once,
// each gateways first, Consul last), then Jaeger. It is idempotent.
func (c *Cluster) Stop() error {
	var err error
	c.stopped.Do(func() { err = c.stop() })
	return err
}

func (c *Cluster) stop() error {
	if c.cancel != nil {
		c.cancel()
	}
	// No restart may start a process after the parks' Stop listed theirs.
	c.bg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make([]error, len(c.parks)+1)
	var wg sync.WaitGroup
	for i, p := range c.parks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Stop(ctx)
		}()
	}
	wg.Wait()
	c.mu.Lock()
	j := c.jaeger
	c.mu.Unlock()
	if j != nil {
		errs[len(c.parks)] = j.Stop(ctx)
	}
	return errors.Join(errs...)
}

// PIDs of every process of the cluster.
func (c *Cluster) PIDs() []int {
	var pids []int
	for _, p := range c.parks {
		pids = append(pids, p.PIDs()...)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jaeger != nil {
		pids = append(pids, c.jaeger.PID())
	}
	return pids
}

// GaveUp delivers a service or gateway the cluster stopped restarting
// (it crashed too often; see [RestartPolicy]).
func (c *Cluster) GaveUp() <-chan *launcher.Proc { return c.gaveUp }

// KillGateway kills park's gateway at once, as a crash would to its
// peers; killed through the launcher, it is not started again (the bench
// measures a club with a peer down).
func (c *Cluster) KillGateway(park string) error {
	for _, p := range c.parks {
		if p.ID == park {
			return p.Gateway().Kill()
		}
	}
	return fmt.Errorf("no gateway of %s", park)
}

// PeerAll makes every pair of parks peers through the admin CLI.
func (c *Cluster) PeerAll(ctx context.Context, out io.Writer) error {
	return peerAll(ctx, c.Root, c.Parks, out)
}

// Demo runs the parks until ctx is done, then stops everything it started.
// A crashed process (a service, a gateway, a Consul agent, Jaeger) is
// started again meanwhile (see [RestartPolicy]); one that keeps crashing
// is left down, and the others run on.
func Demo(ctx context.Context, cfg Config, out io.Writer) (err error) {
	if len(cfg.Parks) == 0 {
		cfg.Parks = DemoParks
	}
	os.Remove(filepath.Join(cfg.Root, "demo.json"))
	con := newConsole(out)
	c, err := Start(ctx, cfg, con)
	defer func() {
		if c == nil {
			return
		}
		con.say("stopping…")
		if serr := c.Stop(); serr != nil && err == nil {
			err = serr
		}
		con.say("stopped: no process left running")
	}()
	if err != nil {
		return err
	}
	root := c.Root
	for _, p := range c.Parks {
		n, err := loadSample(ctx, p)
		if err != nil {
			return fmt.Errorf("park %s: loading sample data: %w", p.ID, err)
		}
		if n > 0 {
			con.say("%s: loaded %d sample listings", p.ID, n)
		} else {
			con.say("%s: keeping the data of an earlier run", p.ID)
		}
	}
	for i, p := range c.Parks {
		f, err := ensurePortalAccount(ctx, root, filepath.Join(root, "data", p.ID))
		if err != nil {
			return fmt.Errorf("park %s: portal account: %w", p.ID, err)
		}
		c.Parks[i].PortalPasswordFile = f
	}
	if err := c.PeerAll(ctx, con); err != nil {
		return err
	}
	var writeMu sync.Mutex
	write := func() error {
		writeMu.Lock()
		defer writeMu.Unlock()
		demo := DemoFile{PIDs: append([]int{os.Getpid()}, c.PIDs()...), Parks: c.Parks, JaegerURL: c.JaegerURL()}
		b, _ := json.MarshalIndent(demo, "", "  ")
		// Renamed into place: a reader never sees it half written.
		tmp := filepath.Join(root, ".demo.json.tmp")
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(root, "demo.json"))
	}
	if err := write(); err != nil {
		return err
	}
	c.mu.Lock()
	c.onChange = func() {
		if err := write(); err != nil {
			con.say("demo.json: %v", err)
		}
	}
	c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintln(&b, "\nParkMesh demo is up:")
	for _, p := range c.Parks {
		fmt.Fprintf(&b, "  %-24s gateway %s   consul http://%s\n", p.ID, p.GatewayURL, p.ConsulHTTPAddr)
	}
	fmt.Fprintf(&b, "Consul runs with ACLs: CONSUL_HTTP_TOKEN_FILE=%s consul members -http-addr=%s\n", c.Parks[0].ConsulTokenFile, c.Parks[0].ConsulHTTPAddr)
	switch u := c.JaegerURL(); {
	case u != "":
		fmt.Fprintf(&b, "  traces (Jaeger query API)  %s/api/traces?service=parkmesh-gateway\n", u)
	case len(cfg.JaegerPorts) == 5:
		fmt.Fprintln(&b, "  traces: Jaeger is still being built or started in the background; a \"traces:\" line follows when it is up")
	}
	fmt.Fprintf(&b, "\nPortal: %s/ — sign in as %q with the password in %s (each park has its own)\n",
		c.Parks[0].GatewayURL, PortalUser, c.Parks[0].PortalPasswordFile)
	fmt.Fprintf(&b, "Admin tokens are in %s. Try:\n", filepath.Join(root, "demo.json"))
	fmt.Fprintf(&b, "  curl -H \"Authorization: Bearer $(jq -r '.parks[0].admin_token' %s)\" '%s/api/v1/search?scope=club&q=硅谷'\n",
		filepath.Join(root, "demo.json"), c.Parks[0].GatewayURL)
	fmt.Fprintln(&b, "A crashed service, gateway, Consul agent or Jaeger is started again; this console says so.")
	fmt.Fprint(&b, "Press Ctrl-C to stop.")
	con.say("%s", b.String())
	<-ctx.Done()
	return nil
}

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
	return f.Post(ctx, http.DefaultClient, func(k listing.Kind) string { return p.GatewayURL + "/api/v1/" + k.Collection() }, h)
}

// peerAll makes every pair of parks peers, as park IT teams would: the
// admin CLI generates a token on one park and establishes it on the other.
func peerAll(ctx context.Context, root string, parks []ParkInfo, out io.Writer) error {
	cli := filepath.Join(root, "bin", "parkmesh")
	// Tokens go by environment and stdin, never argv, where every local
	// user could read them.
	run := func(adminToken, stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, cli, args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Env = append(os.Environ(), "PARKMESH_ADMIN_TOKEN="+adminToken)
		cmd.Stdin = strings.NewReader(stdin)
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("parkmesh %s: %v: %s", strings.Join(args[:2], " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(stdout.String()), nil
	}
	for i, a := range parks {
		for _, b := range parks[i+1:] {
			peers, err := run(a.AdminToken, "", "peering", "list", "--gateway", a.GatewayURL)
			if err != nil {
				return err
			}
			if strings.Contains(peers, b.ID+" ") {
				continue
			}
			tok, err := run(a.AdminToken, "", "peering", "generate-token", "--peer", b.ID, "--gateway", a.GatewayURL)
			if err != nil {
				return err
			}
			if _, err := run(b.AdminToken, tok, "peering", "establish", "--token-file", "-", "--gateway", b.GatewayURL); err != nil {
				return err
			}
			fmt.Fprintf(out, "peered %s with %s\n", a.ID, b.ID)
		}
	}
	return nil
}
