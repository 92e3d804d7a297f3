// Package nodetest starts whole park nodes for tests, as a park IT team
// would run them: a real Consul agent on free loopback ports, the three
// services and the gateway as real processes (built once per test binary)
// with real SQLite files, keys and tokens. Processes can be stopped with
// SIGTERM or killed, and more instances started, to test discovery.
package nodetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"

	"github.com/parkmesh/parkmesh/deploy/testenv/consulagent"
	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds the four deployables once per test process and returns
// the directory holding them.
func Binaries(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		wd, _ := os.Getwd()
		root, err := consulagent.RepoRoot(wd)
		if err != nil {
			buildErr = err
			return
		}
		binDir, buildErr = os.MkdirTemp("", "parkmesh-bin-")
		if buildErr != nil {
			return
		}
		for name, pkg := range map[string]string{
			"directory": "./services/directory/cmd/directory",
			"project":   "./services/project/cmd/project",
			"talent":    "./services/talent/cmd/talent",
			"gateway":   "./gateway/cmd/gateway",
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		tb.Fatalf("nodetest: building binaries: %v", buildErr)
	}
	return binDir
}

// ServiceOf maps a kind to its service binary name.
var ServiceOf = map[listing.Kind]string{
	listing.KindOrganization: "directory",
	listing.KindProject:      "project",
	listing.KindTalent:       "talent",
}

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
	fedAddr       string
	Services      map[listing.Kind][]*Proc
	tb            testing.TB
	opts          Options
}

// Proc is one running process of a park.
type Proc struct {
	Name string
	Addr string // host:port it listens on (a gateway's park side)
	// FederationAddr is a gateway's federation side ("" for services).
	FederationAddr string
	cmd            *exec.Cmd
	log            string
	done           chan struct{}
	err            error
}

// FreePort returns a loopback port that was free a moment ago, drawn from
// below the ephemeral range so no outgoing connection takes it before the
// process under test binds it.
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
}

// StartPark starts a park: agent, keys, one instance of each service, and
// the gateway; it returns once the gateway sees every kind.
func StartPark(tb testing.TB, id string) *Park { return StartParkWith(tb, id, Options{}) }

// StartParkWith is StartPark with options.
func StartParkWith(tb testing.TB, id string, opts Options) *Park {
	tb.Helper()
	p := &Park{ID: id, Agent: consultest.Start(tb), DataDir: tb.TempDir(), Services: map[listing.Kind][]*Proc{}, tb: tb, opts: opts}
	ks, err := parkkey.Init(p.DataDir, id)
	if err != nil {
		tb.Fatal(err)
	}
	p.Keys = ks
	for _, k := range listing.Kinds {
		p.StartService(k, p.DataDir)
	}
	p.StartGateway()
	p.WaitInstances(map[listing.Kind]int{listing.KindOrganization: 1, listing.KindProject: 1, listing.KindTalent: 1}, 30*time.Second)
	return p
}

// StartService starts one more instance of kind k's service keeping its
// data in dataDir.
func (p *Park) StartService(k listing.Kind, dataDir string) *Proc {
	p.tb.Helper()
	name := ServiceOf[k]
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(p.tb))
	pr := p.start(name, addr, "-listen", addr, "-data-dir", dataDir, "-park", p.ID, "-consul", p.Agent.HTTPAddr())
	p.Services[k] = append(p.Services[k], pr)
	return pr
}

// StartGateway starts (or restarts, on a new port) the park's gateway.
func (p *Park) StartGateway() *Proc {
	p.tb.Helper()
	p.fedAddr = "127.0.0.1:" + strconv.Itoa(FreePort(p.tb))
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(p.tb))
	p.Gateway = p.start("gateway", addr, p.gatewayArgs(addr, p.fedAddr)...)
	p.Gateway.FederationAddr = p.fedAddr
	p.GatewayURL = "http://" + p.Gateway.Addr
	p.FederationURL = "http://" + p.fedAddr
	return p.Gateway
}

// StartReplica starts one more gateway of the park (same Consul, same
// keys), as a park running several replicas does.
func (p *Park) StartReplica() *Proc {
	p.tb.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(p.tb))
	fed := "127.0.0.1:" + strconv.Itoa(FreePort(p.tb))
	pr := p.start("gateway", addr, p.gatewayArgs(addr, fed)...)
	pr.FederationAddr = fed
	return pr
}

func (p *Park) gatewayArgs(addr, fed string) []string {
	return append([]string{"-listen", addr, "-federation-listen", fed, "-data-dir", p.DataDir, "-park", p.ID,
		"-consul", p.Agent.HTTPAddr(), "-public-url", "http://" + fed}, p.opts.GatewayArgs...)
}

// RestartGateway kills the gateway at once (as a crash would) and starts it
// again on the same address.
func (p *Park) RestartGateway() {
	p.tb.Helper()
	p.Gateway.Kill()
	addr := p.Gateway.Addr
	p.Gateway = p.start("gateway", addr, p.gatewayArgs(addr, p.fedAddr)...)
	p.Gateway.FederationAddr = p.fedAddr
}

func (p *Park) start(name, addr string, args ...string) *Proc {
	p.tb.Helper()
	bin := filepath.Join(Binaries(p.tb), name)
	logPath := filepath.Join(p.tb.TempDir(), name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		p.tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), p.opts.Env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.tb.Fatal(err)
	}
	pr := &Proc{Name: name, Addr: addr, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		lf.Close()
		close(pr.done)
	}()
	p.tb.Cleanup(func() {
		pr.Kill()
		if p.tb.Failed() {
			p.tb.Logf("%s log (last lines):\n%s", name, pr.LogTail(30))
		}
	})
	// Wait until it serves.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
			res.Body.Close()
			return pr
		}
		select {
		case <-pr.done:
			p.tb.Fatalf("%s exited at start: %v\n%s", name, pr.err, pr.LogTail(30))
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.tb.Fatalf("%s does not serve on %s\n%s", name, addr, pr.LogTail(30))
	return nil
}

// Terminate sends SIGTERM and waits for the process to exit; it returns the
// process's exit error (nil for a clean exit).
func (pr *Proc) Terminate(tb testing.TB) error {
	tb.Helper()
	pr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pr.done:
		return pr.err
	case <-time.After(30 * time.Second):
		tb.Fatalf("%s did not exit 30s after SIGTERM", pr.Name)
	}
	return nil
}

// Kill kills the process at once (no deregistration) and waits.
func (pr *Proc) Kill() {
	select {
	case <-pr.done:
		return
	default:
	}
	pr.cmd.Process.Kill()
	<-pr.done
}

// Exited reports whether the process has ended.
func (pr *Proc) Exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// LogTail returns the last n lines of the process's log.
func (pr *Proc) LogTail(n int) string { return localproc.TailFile(pr.log, n) }

// Log returns the process's whole log.
func (pr *Proc) Log() string {
	b, _ := os.ReadFile(pr.log)
	return string(b)
}

// Token issues a park-local token with role for this park.
func (p *Park) Token(role parktoken.Role) string {
	p.tb.Helper()
	tok, err := parktoken.Issue(p.Keys, p.ID, "test-"+string(role), role, time.Hour, time.Now())
	if err != nil {
		p.tb.Fatal(err)
	}
	return tok
}

// WaitInstances waits until the gateway's /readyz reports at least want[k]
// instances of each kind.
func (p *Park) WaitInstances(want map[listing.Kind]int, timeout time.Duration) {
	p.tb.Helper()
	deadline := time.Now().Add(timeout)
	var got map[string]int
	for time.Now().Before(deadline) {
		got = p.Instances()
		ok := true
		for k, n := range want {
			ok = ok && got[string(k)] == n
		}
		if ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.tb.Fatalf("gateway of %s sees instances %v, want %v", p.ID, got, want)
}

// Instances returns what the gateway's /readyz reports per kind.
func (p *Park) Instances() map[string]int {
	res, err := http.Get(p.GatewayURL + "/readyz")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var body struct{ Instances map[string]int }
	json.NewDecoder(res.Body).Decode(&body)
	return body.Instances
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
