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
	// ConsulTokenFile holds the agent's management token (mode 0600): for
	// the consul CLI, CONSUL_HTTP_TOKEN_FILE=<it>. Each process has its
	// own token beside it (tokens/<process>/consul.token).
	ConsulTokenFile string `json:"consul_token_file"`
	AdminToken      string `json:"admin_token"`
}

// DemoFile is what the demo writes to <root>/demo.json once every park is up.
type DemoFile struct {
	Parks []ParkInfo `json:"parks"`
	// PIDs of every process the demo started, the launcher's first.
	PIDs []int `json:"pids"`
	// JaegerURL is the trace backend's query URL, when it runs.
	JaegerURL string `json:"jaeger_url,omitempty"`
}

// Cluster is a set of parks running as local processes.
type Cluster struct {
	Root  string
	Parks []ParkInfo
	// JaegerURL is the trace backend's query URL ("" without one).
	JaegerURL string

	parks  []*launcher.Park
	jaeger *jaegerserver.Server
	env    []string // added to every process's environment
	exited chan *launcher.Proc
	done   chan struct{} // closed by Stop: the watchers of Exited end
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

// Start builds the binaries and starts cfg.Parks, each with its own Consul
// agent, services and gateway (see [launcher.Start]), and returns once
// every gateway sees every kind. Seed, when set, runs for each park before
// its services start. The caller must Stop the cluster, also after an
// error.
func Start(ctx context.Context, cfg Config, out io.Writer) (*Cluster, error) {
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Root: root, exited: make(chan *launcher.Proc, 64), done: make(chan struct{})}
	for _, d := range []string{"bin", "data", "logs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o750); err != nil {
			return c, err
		}
	}
	fmt.Fprintln(out, "building binaries…")
	if err := launcher.Build(ctx, filepath.Join(root, "bin"), out, append(launcher.ParkBinaries, "parkmesh")...); err != nil {
		return c, err
	}
	consulBin, err := consulagent.FindBinary(ctx, out)
	if err != nil {
		return c, err
	}
	if len(cfg.JaegerPorts) == 5 {
		c.startJaeger(ctx, cfg.JaegerPorts, out)
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
		go c.watch(p)
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

// watch forwards the park's crashed processes to [Cluster.Exited] until
// the cluster stops.
func (c *Cluster) watch(p *launcher.Park) {
	for {
		select {
		case pr := <-p.Exited():
			select {
			case c.exited <- pr:
			default:
			}
		case <-c.done:
			return
		}
	}
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
	c.jaeger = j
	c.env = append(j.ExporterEnv("grpc"), "OTEL_BSP_SCHEDULE_DELAY=500")
	c.JaegerURL = j.QueryURL()
}

// Stop stops every park (all at once, each gateways first, Consul last),
// then Jaeger. It is idempotent.
func (c *Cluster) Stop() error {
	select {
	case <-c.done:
	default:
		close(c.done)
	}
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
	if c.jaeger != nil {
		errs[len(c.parks)] = c.jaeger.Stop(ctx)
	}
	return errors.Join(errs...)
}

// PIDs of every process of the cluster.
func (c *Cluster) PIDs() []int {
	var pids []int
	for _, p := range c.parks {
		pids = append(pids, p.PIDs()...)
	}
	if c.jaeger != nil {
		pids = append(pids, c.jaeger.PID())
	}
	return pids
}

// Exited delivers a service or gateway that ended while the cluster was
// meant to run.
func (c *Cluster) Exited() <-chan *launcher.Proc { return c.exited }

// KillGateway kills park's gateway at once, as a crash would.
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
	fmt.Fprintf(out, "Consul runs with ACLs: CONSUL_HTTP_TOKEN_FILE=%s consul members -http-addr=%s\n", demo.Parks[0].ConsulTokenFile, demo.Parks[0].ConsulHTTPAddr)
	if c.JaegerURL != "" {
		fmt.Fprintf(out, "  traces (Jaeger query API)  %s/api/traces?service=parkmesh-gateway\n", c.JaegerURL)
	}
	fmt.Fprintf(out, "\nAdmin tokens are in %s. Try:\n", filepath.Join(root, "demo.json"))
	fmt.Fprintf(out, "  curl -H \"Authorization: Bearer $(jq -r '.parks[0].admin_token' %s)\" '%s/api/v1/search?scope=club&q=硅谷'\n",
		filepath.Join(root, "demo.json"), demo.Parks[0].GatewayURL)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
	select {
	case <-ctx.Done():
	case pr := <-c.Exited():
		return fmt.Errorf("%s %s exited unexpectedly: %v (see %s)", pr.Park, pr.Name, pr.ExitErr(), pr.LogPath())
	}
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
