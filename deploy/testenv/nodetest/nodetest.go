// Package nodetest starts whole park nodes for tests, as a park IT team
// would run them: a real Consul agent (ACLs on, default deny, one token per
// process), the three services and the gateway as real processes (built
// once per test binary) with real SQLite files, keys and tokens. Processes can be stopped with SIGTERM or killed, and more
// instances started, to test discovery.
//
// It is a thin testing.TB layer over [launcher], the park launcher `make
// demo` uses too, on drawn ports: a port another process takes between the
// draw and the bind makes the launcher draw again, never fails the test.
// With -short, tests that start a park are skipped.
package nodetest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
	"github.com/parkmesh/parkmesh/deploy/testenv/internal/harness"
	"github.com/parkmesh/parkmesh/deploy/testenv/launcher"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds the park's deployables once per test process and returns
// the directory holding them.
func Binaries(tb testing.TB) string {
	tb.Helper()
	harness.SkipShort(tb, "a whole park as real processes")
	buildOnce.Do(func() {
		sweepBinDirs()
		if binDir, buildErr = os.MkdirTemp("", binDirPrefix+strconv.Itoa(os.Getpid())+"-"); buildErr != nil {
			return
		}
		var out strings.Builder
		if buildErr = launcher.Build(context.Background(), binDir, &out); buildErr != nil {
			buildErr = &buildError{buildErr, out.String()}
		}
	})
	if buildErr != nil {
		tb.Fatalf("nodetest: building binaries: %v", buildErr)
	}
	return binDir
}

// binDirPrefix names the directories Binaries builds into, one per test
// process (about 130 MB each). The pid in the name lets a later test
// process remove those of processes that have ended: a test binary has no
// hook at exit, and a Cleanup would remove them under the tests still to run.
const binDirPrefix = "parkmesh-bin-pid"

// sweepBinDirs removes the binary directories of test processes that are
// gone.
func sweepBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, dir := range dirs {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), binDirPrefix), "-")
		n, err := strconv.Atoi(pid)
		if err != nil || n == os.Getpid() {
			continue
		}
		if err := syscall.Kill(n, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}

type buildError struct {
	err    error
	output string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.output }

// Park is one running park node.
type Park struct {
	ID         string
	Agent      *consultest.Agent
	DataDir    string
	Keys       *parkkey.KeySet
	Gateway    *Proc
	GatewayURL string // park side: staff API, portal, metrics
	// FederationURL is the gateway's federation side, the URL peers use.
	FederationURL string
	Services      map[listing.Kind][]*Proc
	park          *launcher.Park
	tb            testing.TB
}

// Proc is one running process of a park: a [launcher.Proc] (Name, Addr,
// FederationAddr, PID, Exited, LogTail, Log, …) whose stopping reports to
// the test.
type Proc struct {
	*launcher.Proc
}

// FreePort returns a loopback port that was free a moment ago, drawn from
// below the ephemeral range so no outgoing connection takes it. Another
// process may still take it before the caller binds it: prefer letting the
// launcher choose (StartPark), which draws again when that happens.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ports, err := localproc.FreePorts(1)
	if err != nil {
		tb.Fatal(err)
	}
	return ports[0]
}

// Options change how StartParkWith starts a park.
type Options struct {
	// GatewayArgs are extra flags for the gateway (e.g. -breaker-open 1s).
	GatewayArgs []string
	// Env is added to every process's environment (e.g. OTEL_* variables).
	Env []string
	// Choose draws the ports (default: free loopback ports); a test of the
	// launcher's retry passes one that takes a port it hands out.
	Choose localproc.PortChooser
}

// StartPark starts a park: agent, keys, one instance of each service, and
// the gateway; it returns once the gateway sees every kind.
func StartPark(tb testing.TB, id string) *Park { return StartParkWith(tb, id, Options{}) }

// StartParkWith is StartPark with options.
func StartParkWith(tb testing.TB, id string, opts Options) *Park {
	tb.Helper()
	bin := Binaries(tb)
	consul := consultest.Binary(tb)
	dir := tb.TempDir()
	ctx, cancel := context.WithTimeout(tb.Context(), 3*time.Minute)
	defer cancel()
	lp, err := launcher.Start(ctx, launcher.Config{
		ID: id, BinDir: bin, ConsulBin: consul, DataDir: filepath.Join(dir, "data"), LogDir: filepath.Join(dir, "logs"),
		Choose: opts.Choose, GatewayArgs: opts.GatewayArgs, Env: opts.Env, ReadyTimeout: 30 * time.Second, Logf: tb.Logf,
	})
	if err != nil {
		tb.Fatalf("nodetest: %v", err)
	}
	p := &Park{ID: id, DataDir: lp.DataDir, Keys: lp.Keys, Services: map[listing.Kind][]*Proc{}, park: lp, tb: tb}
	p.Agent = consultest.Adopt(tb, lp.Agent)
	// Registered after the agent's cleanup, so it runs before it; the log
	// files' directory is removed only after both.
	tb.Cleanup(func() {
		if tb.Failed() {
			for _, pr := range lp.Procs() {
				tb.Logf("%s %s log (last lines):\n%s", id, pr.Name, pr.LogTail(30))
			}
		}
		lp.Kill()
	})
	for _, k := range listing.Kinds {
		for _, pr := range lp.Services(k) {
			p.Services[k] = append(p.Services[k], &Proc{pr})
		}
	}
	p.setGateway(lp.Gateway())
	return p
}

func (p *Park) setGateway(gw *launcher.Proc) *Proc {
	p.Gateway = &Proc{gw}
	p.GatewayURL = "http://" + gw.Addr
	p.FederationURL = "http://" + gw.FederationAddr
	return p.Gateway
}

// must runs one start of the launcher's, failing the test if it fails.
func (p *Park) must(start func(context.Context) (*launcher.Proc, error)) *launcher.Proc {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.tb.Context(), 2*time.Minute)
	defer cancel()
	pr, err := start(ctx)
	if err != nil {
		p.tb.Fatalf("nodetest: %v", err)
	}
	return pr
}

// ConsulTokenFile is the file holding the Consul token the launcher gave
// process (directory, project, talent or gateway): the one that process
// runs with. p.Agent.Client() carries the management token.
func (p *Park) ConsulTokenFile(process string) string { return p.park.ConsulTokenFile(process) }

// StartService starts one more instance of kind k's service keeping its
// data in dataDir.
func (p *Park) StartService(k listing.Kind, dataDir string) *Proc {
	p.tb.Helper()
	pr := &Proc{p.must(func(ctx context.Context) (*launcher.Proc, error) { return p.park.StartService(ctx, k, dataDir) })}
	p.Services[k] = append(p.Services[k], pr)
	return pr
}

// StartGateway starts another gateway for the park on new ports and makes
// it the park's Gateway.
func (p *Park) StartGateway() *Proc {
	p.tb.Helper()
	return p.setGateway(p.must(p.park.StartGateway))
}

// StartReplica starts one more gateway of the park (same Consul, same
// keys), as a park running several replicas does.
func (p *Park) StartReplica() *Proc {
	p.tb.Helper()
	return &Proc{p.must(p.park.StartReplica)}
}

// RestartGateway kills the gateway at once (as a crash would) and starts it
// again on the same addresses. GatewayURL and FederationURL stay as they
// are, untouched, so a test's goroutines may go on reading them meanwhile.
func (p *Park) RestartGateway() {
	p.tb.Helper()
	p.Gateway = &Proc{p.must(p.park.RestartGateway)}
}

// Terminate sends SIGTERM and waits for the process to exit; it returns the
// process's exit error (nil for a clean exit).
func (pr *Proc) Terminate(tb testing.TB) error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = pr.Stop(ctx) // kills when ctx ends, and only fails if even that does
	if ctx.Err() != nil {
		tb.Fatalf("%s did not exit 30s after SIGTERM", pr.Name)
	}
	return pr.ExitErr()
}

// Kill kills the process at once (no deregistration) and waits.
func (pr *Proc) Kill() { _ = pr.Proc.Kill() }

// Token issues a park-local token with role for this park.
func (p *Park) Token(role parktoken.Role) string {
	p.tb.Helper()
	tok, err := p.park.Token(role, "test-"+string(role), time.Hour)
	if err != nil {
		p.tb.Fatal(err)
	}
	return tok
}

// WaitInstances waits until the gateway's /readyz reports want[k]
// instances of each kind.
func (p *Park) WaitInstances(want map[listing.Kind]int, timeout time.Duration) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.tb.Context(), timeout)
	defer cancel()
	if err := p.park.WaitInstances(ctx, want); err != nil {
		p.tb.Fatalf("gateway of %s: %v", p.ID, err)
	}
}

// Instances returns what the gateway's /readyz reports per kind.
func (p *Park) Instances() map[string]int {
	got, _ := p.park.Instances(p.tb.Context())
	return got
}

// Do sends a request to the gateway with token (none when empty) and
// returns the status and body.
func (p *Park) Do(ctx context.Context, method, path, token string, body io.Reader, hdr ...string) (int, []byte) {
	p.tb.Helper()
	base := p.GatewayURL
	if strings.HasPrefix(path, "/federation/") || strings.HasPrefix(path, "/.well-known/") {
		base = p.FederationURL // the trust boundary is a port
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		p.tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// Peer makes a and b peers through the real handshake: a generates a
// peering token for b, b establishes with it.
func Peer(tb testing.TB, a, b *Park) {
	tb.Helper()
	ctx := context.Background()
	status, body := a.Do(ctx, "POST", "/api/v1/peerings/tokens", a.Token(parktoken.Admin), strings.NewReader(`{"peer":"`+b.ID+`"}`))
	if status != http.StatusCreated {
		tb.Fatalf("%s: generate peering token for %s: %d %s", a.ID, b.ID, status, body)
	}
	var gen struct{ Token string }
	json.Unmarshal(body, &gen)
	req, _ := json.Marshal(map[string]string{"token": gen.Token})
	status, body = b.Do(ctx, "POST", "/api/v1/peerings", b.Token(parktoken.Admin), strings.NewReader(string(req)))
	if status != http.StatusCreated {
		tb.Fatalf("%s: establish peering with %s: %d %s", b.ID, a.ID, status, body)
	}
}

// StartClub starts parks with the given ids and peers every pair.
func StartClub(tb testing.TB, opts Options, ids ...string) []*Park {
	tb.Helper()
	parks := make([]*Park, len(ids))
	for i, id := range ids {
		parks[i] = StartParkWith(tb, id, opts)
	}
	for i := range parks {
		for j := i + 1; j < len(parks); j++ {
			Peer(tb, parks[i], parks[j])
		}
	}
	return parks
}

// Create posts a listing JSON to the park's gateway and returns it decoded.
func (p *Park) Create(kindPath, body string) listing.Listing {
	p.tb.Helper()
	status, b := p.Do(context.Background(), "POST", "/api/v1/"+kindPath, p.Token(parktoken.Editor), strings.NewReader(body))
	if status != http.StatusCreated {
		p.tb.Fatalf("%s: create %s: %d %s", p.ID, kindPath, status, b)
	}
	var l listing.Listing
	json.Unmarshal(b, &l)
	return l
}
