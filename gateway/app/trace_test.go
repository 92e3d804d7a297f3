package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
	"github.com/parkmesh/parkmesh/deploy/testenv/jaegerserver"
	"github.com/parkmesh/parkmesh/deploy/testenv/jaegertest"
	"github.com/parkmesh/parkmesh/deploy/testenv/logbuf"
	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/app"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
	"github.com/parkmesh/parkmesh/pkg/telemetry"
	"github.com/parkmesh/parkmesh/services/directory"
	"github.com/parkmesh/parkmesh/services/listingservice"
	projectsvc "github.com/parkmesh/parkmesh/services/project"
	"github.com/parkmesh/parkmesh/services/talent"
)

// failLog is a log a process of the test writes to; its last lines are
// logged if the test fails (an in-process gateway's log says why it is
// not ready, where io.Discard would hide it).
func failLog(t *testing.T, name string) *logbuf.Buffer {
	b := &logbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			t.Logf("%s log (last lines):\n%s", name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	return b
}

// inprocPark is a park whose services and gateway run inside the test
// process (real Consul, SQLite, HTTP), so they can share an in-memory span
// exporter.
type inprocPark struct {
	id, url string
	fedURL  string // the federation side
	// metricsURL is where metrics and health are served, when apart.
	metricsURL string
	keys       *parkkey.KeySet
	gwLog      *logbuf.Buffer
	stopGW     func()
}

func startInproc(t *testing.T, id string, exp sdktrace.SpanExporter) *inprocPark {
	t.Helper()
	return startInprocWith(t, id, exp, false)
}

// startInprocWith is startInproc with metrics and health, when metrics is
// set, on a listener of their own.
func startInprocWith(t *testing.T, id string, exp sdktrace.SpanExporter, metrics bool) *inprocPark {
	t.Helper()
	agent, dir, ks := startInprocNode(t, id, exp)
	p := &inprocPark{id: id, keys: ks, gwLog: failLog(t, id+" gateway")}
	// Listeners on port 0, opened here: the addresses are known (peers are
	// told the federation one) and no chosen port can be lost to a race.
	g := app.NewMain(io.Discard)
	g.Telemetry = telemetry.Config{Exporter: exp}
	g.Listeners.Park, g.Listeners.Federation = listenLocal(t), listenLocal(t)
	p.url, p.fedURL = "http://"+g.Listeners.Park.Addr().String(), "http://"+g.Listeners.Federation.Addr().String()
	args := append([]string{"-data-dir", dir, "-park", id, "-public-url", p.fedURL}, consulFlags(t, agent, consulacl.Gateway)...)
	ready := p.url + "/readyz"
	if metrics {
		g.Listeners.Metrics = listenLocal(t)
		p.metricsURL = "http://" + g.Listeners.Metrics.Addr().String()
		ready = p.metricsURL + "/readyz"
	}
	if err := g.ParseFlags(args, func(string) string { return "" }, p.gwLog); err != nil {
		t.Fatal(err)
	}
	p.stopGW = runInproc(t, g.Open, g.Run)
	waitGatewayReady(t, id, ready, agent)
	return p
}

// listenLocal opens a loopback listener on a port the kernel picks.
func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// runInproc opens a process's Main and runs it until the test ends; the
// function returned stops it earlier.
func runInproc(t *testing.T, open func(context.Context) error, serve func(context.Context) error) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := open(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); serve(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// startInprocNode starts what a park's gateway needs around it: a Consul
// agent (ACLs on), the park's keys in a new data directory, and its three
// services.
func startInprocNode(t *testing.T, id string, exp sdktrace.SpanExporter) (agent *consultest.Agent, dir string, keys *parkkey.KeySet) {
	t.Helper()
	agent = consultest.Start(t)
	dir = t.TempDir()
	ks, err := parkkey.Init(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	startInprocServices(t, id, dir, agent, exp)
	return agent, dir, ks
}

// consulFlags are the flags pointing process at the agent, with its own
// token (in a file, as in production).
func consulFlags(t *testing.T, agent *consultest.Agent, process string) []string {
	return []string{"-consul", agent.HTTPAddr(), "-consul-token-file", agent.TokenFile(t, process)}
}

// startInprocServices runs the park's three services in this process, on
// real SQLite files in dir, registered with the agent.
func startInprocServices(t *testing.T, id, dir string, agent *consultest.Agent, exp sdktrace.SpanExporter) {
	t.Helper()
	for _, spec := range []listingservice.Spec{directory.Spec, projectsvc.Spec, talent.Spec} {
		m := listingservice.NewMain(spec, failLog(t, id+" "+spec.Name))
		m.Telemetry = telemetry.Config{Exporter: exp}
		args := append([]string{"-listen", "127.0.0.1:0", "-data-dir", dir, "-park", id, "-log-level", "error"}, consulFlags(t, agent, spec.Name)...)
		if err := m.ParseFlags(args, func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
		runInproc(t, m.Open, m.Run)
	}
}

// waitGatewayReady waits until the gateway's readiness at url reports an
// instance of every kind. If it never does, what it last answered and what
// the agent says of each service's health are logged.
func waitGatewayReady(t *testing.T, id, url string, agent *consultest.Agent) {
	t.Helper()
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var body struct{ Instances map[string]int }
		res, err := http.Get(url)
		if err != nil {
			last = err.Error()
		} else {
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			last = fmt.Sprintf("%d %s", res.StatusCode, raw)
			json.Unmarshal(raw, &body)
		}
		if body.Instances["organization"] > 0 && body.Instances["project"] > 0 && body.Instances["talent"] > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, k := range listing.Kinds {
		checks, _, err := agent.Client().Health().Checks(k.ServiceName(), nil)
		for _, c := range checks {
			t.Logf("agent: %s %s: %s %s", k.ServiceName(), c.ServiceID, c.Status, c.Output)
		}
		if err != nil || len(checks) == 0 {
			t.Logf("agent: %s: no checks (%v)", k.ServiceName(), err)
		}
	}
	t.Fatalf("timed out waiting for %s gateway to see its services; readiness last said: %s", id, last)
}

func (p *inprocPark) do(t *testing.T, method, path string, role parktoken.Role, body string, hdr ...string) (int, []byte) {
	t.Helper()
	tok, _ := parktoken.Issue(p.keys, p.id, "test", role, time.Hour, time.Now())
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func peerInproc(t *testing.T, a, b *inprocPark) {
	t.Helper()
	s, body := a.do(t, "POST", "/api/v1/peerings/tokens", parktoken.Admin, `{"peer":"`+b.id+`"}`)
	var gen struct{ Token string }
	json.Unmarshal(body, &gen)
	if s != 201 {
		t.Fatalf("token: %d %s", s, body)
	}
	if s, body := b.do(t, "POST", "/api/v1/peerings", parktoken.Admin, `{"token":"`+gen.Token+`"}`); s != 201 {
		t.Fatalf("establish: %d %s", s, body)
	}
}

func parkOf(s sdktrace.ReadOnlySpan) string {
	for _, kv := range s.Resource().Attributes() {
		if kv.Key == "parkmesh.park" {
			return kv.Value.AsString()
		}
	}
	return ""
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if kv.Key == attribute.Key(key) {
			return kv.Value.String()
		}
	}
	return ""
}

func TestClubSearchIsOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	a := startInproc(t, "xian-hitech", exp)
	b := startInproc(t, "chengdu-hitech", exp)
	c := startInproc(t, "siliconvalley-offshore", exp)
	peerInproc(t, a, b)
	peerInproc(t, a, c)
	for _, p := range []*inprocPark{a, b, c} {
		if s, body := p.do(t, "POST", "/api/v1/projects", parktoken.Editor, project(p.id+" copper", "")); s != 201 {
			t.Fatalf("create: %d %s", s, body)
		}
	}
	exp.Reset()
	status, body := a.do(t, "GET", "/api/v1/search?scope=club&mode=live&q=copper", parktoken.Viewer, "")
	if status != 200 || !strings.Contains(string(body), `"ok":3`) {
		t.Fatalf("club search: %d %s", status, body)
	}
	spans := exp.GetSpans().Snapshots()
	var root sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "GET /api/v1/search" && parkOf(s) == a.id {
			root = s
		}
	}
	if root == nil {
		t.Fatalf("no server span for the club search among %d spans", len(spans))
	}
	tid := root.SpanContext().TraceID()
	byID := map[string]sdktrace.ReadOnlySpan{}
	parks := map[string]map[string]bool{} // park -> service names
	for _, s := range spans {
		if s.SpanContext().TraceID() != tid {
			continue
		}
		byID[s.SpanContext().SpanID().String()] = s
		svc := ""
		for _, kv := range s.Resource().Attributes() {
			if kv.Key == "service.name" {
				svc = kv.Value.AsString()
			}
		}
		if parks[parkOf(s)] == nil {
			parks[parkOf(s)] = map[string]bool{}
		}
		parks[parkOf(s)][svc] = true
	}
	for _, p := range []string{a.id, b.id, c.id} {
		if !parks[p]["parkmesh-gateway"] || !parks[p]["parkmesh-project"] {
			t.Errorf("trace lacks %s's gateway or project service spans: %v", p, parks[p])
		}
	}
	// Structure: a peer gateway's server span descends from A's peer.search span.
	peerSpans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range byID {
		if s.Name() == "peer.search" {
			peerSpans[attr(s, "parkmesh.peer.id")] = s
			if attr(s, "parkmesh.peer.status") != "ok" || attr(s, "parkmesh.peer.breaker_state") != "closed" {
				t.Errorf("peer span attributes: %v", s.Attributes())
			}
		}
	}
	for _, s := range byID {
		if s.Name() != "POST /federation/v1/search" {
			continue
		}
		ancestor, peer := s, ""
		for ancestor != nil && ancestor.Name() != "peer.search" {
			ancestor = byID[ancestor.Parent().SpanID().String()]
		}
		if ancestor != nil {
			peer = attr(ancestor, "parkmesh.peer.id")
		}
		if peer != parkOf(s) {
			t.Errorf("federation span of %s does not descend from A's peer.search span for it", parkOf(s))
		}
	}
	if len(peerSpans) != 2 {
		t.Errorf("peer.search spans for %d peers, want 2", len(peerSpans))
	}
	// The request's log line carries its trace and span ids.
	var found bool
	for _, line := range strings.Split(a.gwLog.String(), "\n") {
		if strings.Contains(line, `"route":"GET /api/v1/search"`) && strings.Contains(line, `"trace_id":"`+tid.String()+`"`) &&
			strings.Contains(line, `"span_id":"`+root.SpanContext().SpanID().String()+`"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no request log line with trace_id %s and the server span id", tid)
	}

	// A peer failure shows as an error span with its status.
	c.stopGW()
	exp.Reset()
	a.do(t, "GET", "/api/v1/search?scope=club&mode=live&q=copper&timeout_ms=1000", parktoken.Viewer, "")
	var failed bool
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == "peer.search" && attr(s, "parkmesh.peer.id") == c.id {
			failed = s.Status().Code == codes.Error && attr(s, "parkmesh.peer.status") == "error" && len(s.Events()) > 0
		}
	}
	if !failed {
		t.Error("the stopped peer's call is not an error span with status error and an error event")
	}

	// An outsider's trace context is not continued: a new trace, linked.
	exp.Reset()
	foreign := "00-" + randomHex(16) + "-" + randomHex(8) + "-01"
	req, _ := http.NewRequest("GET", a.url+"/api/v1/search?q=copper", nil)
	req.Header.Set("traceparent", foreign)
	res, err := http.DefaultClient.Do(req) // no token
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, s := range exp.GetSpans().Snapshots() {
		if s.Name() == "GET /api/v1/search" {
			if s.SpanContext().TraceID().String() == foreign[3:35] {
				t.Error("an unauthenticated caller's trace was continued")
			}
			if len(s.Links()) != 1 || s.Links()[0].SpanContext.TraceID().String() != foreign[3:35] {
				t.Errorf("the offered trace is not linked: %v", s.Links())
			}
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestJaegerSeesOneTraceAcrossParks runs three parks as real processes
// exporting to a real Jaeger (built and cached by deploy/tools) and reads
// the club search's trace back from Jaeger's query API.
func TestJaegerSeesOneTraceAcrossParks(t *testing.T) {
	j := jaegertest.Start(t)
	opts := nodetest.Options{Env: append(j.ExporterEnv("grpc"), "OTEL_BSP_SCHEDULE_DELAY=100")}
	parks := nodetest.StartClub(t, opts, "xian-hitech", "chengdu-hitech", "siliconvalley-offshore")
	a := parks[0]
	for _, p := range parks {
		p.Create("projects", project(p.ID+" copper", ""))
	}
	traceID := randomHex(16)
	status, body := a.Do(context.Background(), "GET", "/api/v1/search?scope=club&mode=live&q=copper", a.Token(parktoken.Viewer), nil,
		"traceparent", "00-"+traceID+"-"+randomHex(8)+"-01")
	if status != 200 || !strings.Contains(string(body), `"ok":3`) {
		t.Fatalf("club search: %d %s", status, body)
	}
	j.WaitTrace(t, traceID, 30*time.Second, func(tr jaegerserver.Trace) error {
		got, err := jaegertest.Parks(tr)
		if err != nil {
			return err
		}
		if len(got) < 3 {
			return fmt.Errorf("spans from parks %v, want all three", got)
		}
		return nil
	})
	_ = listing.KindProject
}
