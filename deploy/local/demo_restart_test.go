package local_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/local"
	"github.com/parkmesh/parkmesh/deploy/testenv/jaegerserver"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
	"github.com/parkmesh/parkmesh/pkg/listing"

	"github.com/hashicorp/consul/api"
)

// TestDemoFirstRunAndRestart runs the demo as on a first run, with
// Jaeger's build still going (a stand-in install command that waits for
// the test, then names the real cached Jaeger): club searches answer before
// "the build" ends; a gateway killed with SIGKILL is started again where it
// was and the console says so; so is a park's Consul agent, after which
// the park works again by itself; once the build ends Jaeger starts, the
// console says where, and a later club search's trace is in Jaeger, also
// after Jaeger was killed and started again.
func TestDemoFirstRunAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("short: the demo test starts three whole parks")
	}
	jaegerBin, err := jaegerserver.FindBinary(t.Context(), nil)
	if err != nil {
		t.Fatalf("Jaeger binary: %v (set %s or fix deploy/tools/install-jaeger.sh)", err, jaegerserver.BinEnv)
	}
	bin := buildDemo(t)
	root, dir := t.TempDir(), t.TempDir()
	release := filepath.Join(dir, "build-done")
	install := filepath.Join(dir, "install-jaeger")
	script := fmt.Sprintf("#!/bin/sh\necho 'stand-in install-jaeger: building until %[1]s exists' >&2\n"+
		"while [ ! -e '%[1]s' ]; do sleep 0.2; done\necho 'stand-in install-jaeger: built' >&2\necho '%[2]s'\n", release, jaegerBin)
	if err := os.WriteFile(install, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	const jaegerQuery = "http://127.0.0.1:32741" // fixed ports: see TestDemoSmoke
	run := runDemo(t, bin, root, []string{"-gateway-port", "32410", "-service-port", "32600", "-consul-port", "32700",
		"-jaeger-port", "32741", "-jaeger-otlp-port", "32743", "-jaeger-health-port", "32746", "-jaeger-install", install})
	p := run.demo.Parks[0]

	// The parks serve while Jaeger's "build" is pending.
	if up := run.log.String(); !strings.Contains(up, "Jaeger is still being built") || strings.Contains(up, "traces: http") {
		t.Errorf("console before Jaeger's build ends does not say it is pending:\n%s", up)
	}
	waitClubSearch(t, p, nil)
	if res, err := http.Get(jaegerQuery + "/api/services"); err == nil {
		res.Body.Close()
		t.Fatalf("something answers on Jaeger's port while its build is pending")
	}

	// A gateway killed as a crash would is started again, and said so.
	gwPort := portOf(t, p.GatewayURL)
	old := listeningPID(t, run.demo.PIDs, gwPort)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	line, err := run.waitLine(fmt.Sprintf("%s gateway (pid %d) exited: signal: killed; restarting it in 1s", p.ID, old), 30*time.Second)
	if err != nil {
		t.Fatalf("%v:\n%s", err, run.log.String())
	}
	if wantLog := filepath.Join(root, "logs", p.ID+"-gateway.log"); !strings.Contains(line, "its log: "+wantLog) {
		t.Errorf("restart line %q does not name the log %s", line, wantLog)
	}
	line, err = run.waitLine(p.ID+" gateway is running again (pid ", 90*time.Second)
	if err != nil {
		t.Fatalf("%v:\n%s", err, run.log.String())
	}
	restarted := restartedPID(t, line, old)
	if ok, err := localproc.Listening(restarted, gwPort); err != nil || !ok {
		t.Errorf("restarted gateway (pid %d) does not hold port %d: %v", restarted, gwPort, err)
	}
	res, err := http.Get(p.GatewayURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("restarted gateway /healthz: %s", res.Status)
	}
	waitClubSearch(t, p, nil)
	if pids := readDemo(t, root).PIDs; !contains(pids, restarted) || contains(pids, old) {
		t.Errorf("demo.json pids %v after the restart: want %d, not %d", pids, restarted, old)
	}

	// A park's Consul agent killed as a crash would is started again on
	// its ports and data directory, and the park works again by itself.
	killConsulAndSeeThePark(t, run, root, run.demo.Parks[1])

	// The build ends: Jaeger starts, the console says where, and traces
	// of club searches made from then on arrive.
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run.waitLine("traces: "+jaegerQuery+"/api/traces?service=parkmesh-gateway", 60*time.Second); err != nil {
		t.Fatalf("%v:\n%s", err, run.log.String())
	}
	waitTraced(t, jaegerQuery, p)
	if j := readDemo(t, root).JaegerURL; j != jaegerQuery {
		t.Errorf("demo.json jaeger_url = %q, want %s", j, jaegerQuery)
	}

	// Jaeger killed as a crash would comes back on its ports (empty: it
	// keeps traces in memory), and a later search's trace reaches it.
	oldJaeger := listeningPID(t, readDemo(t, root).PIDs, portOf(t, jaegerQuery))
	if err := syscall.Kill(oldJaeger, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("jaeger (pid %d) exited: signal: killed; restarting it in 1s (its log: %s)", oldJaeger, filepath.Join(root, "logs", "jaeger.log"))
	if _, err := run.waitLine(want, 30*time.Second); err != nil {
		t.Fatalf("%v:\n%s", err, run.log.String())
	}
	line, err = run.waitLine("jaeger is running again (pid ", 90*time.Second)
	if err != nil {
		t.Fatalf("%v:\n%s", err, run.log.String())
	}
	newJaeger := restartedPID(t, line, oldJaeger)
	if !strings.Contains(line, jaegerQuery) {
		t.Errorf("restart line %q does not say Jaeger is on %s", line, jaegerQuery)
	}
	if ok, err := localproc.Listening(newJaeger, portOf(t, jaegerQuery)); err != nil || !ok {
		t.Errorf("restarted Jaeger (pid %d) does not hold %s: %v", newJaeger, jaegerQuery, err)
	}
	waitTraced(t, jaegerQuery, p)
	if d := readDemo(t, root); d.JaegerURL != jaegerQuery || !contains(d.PIDs, newJaeger) || contains(d.PIDs, oldJaeger) {
		t.Errorf("demo.json after Jaeger's restart: jaeger_url %q, pids %v; want %s, %d and not %d", d.JaegerURL, d.PIDs, jaegerQuery, newJaeger, oldJaeger)
	}

	pids := readDemo(t, root).PIDs
	run.stop()
	t.Logf("console:\n%s", run.log.String())
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still running after the demo stopped", pid)
		}
	}
	// The three processes the test killed are the only ones that ended:
	// none of the park's processes fell over while its agent was down.
	var exits []string
	for _, l := range strings.Split(run.log.String(), "\n") {
		if strings.Contains(l, ") exited: ") {
			exits = append(exits, l)
		}
	}
	if len(exits) != 3 {
		t.Errorf("%d processes exited, want the 3 the test killed:\n%s", len(exits), strings.Join(exits, "\n"))
	}
}

// killConsulAndSeeThePark kills p's Consul agent with SIGKILL and checks
// that the demo starts it again where it was and that the park works
// again without help: its services are registered and passing in the
// agent, its gateway's watch is live (a service put in maintenance leaves
// /readyz and comes back), and a club search answers with the peers.
func killConsulAndSeeThePark(t *testing.T, run *demoRun, root string, p local.ParkInfo) {
	t.Helper()
	consulPort := portOf(t, "http://"+p.ConsulHTTPAddr)
	old := listeningPID(t, readDemo(t, root).PIDs, consulPort)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s consul (pid %d) exited: signal: killed; restarting it in 1s (its log: %s)", p.ID, old, filepath.Join(root, "logs", p.ID+"-consul.log"))
	if _, err := run.waitLine(want, 30*time.Second); err != nil {
		t.Fatalf("%v:\n%s", err, run.log.String())
	}
	line, err := run.waitLine(p.ID+" consul is running again (pid ", 90*time.Second)
	if err != nil {
		t.Fatalf("%v:\n%s", err, run.log.String())
	}
	restarted := restartedPID(t, line, old)
	if !strings.Contains(line, p.ConsulHTTPAddr) {
		t.Errorf("restart line %q does not name the agent's address %s", line, p.ConsulHTTPAddr)
	}
	if ok, err := localproc.Listening(restarted, consulPort); err != nil || !ok {
		t.Errorf("restarted agent (pid %d) does not hold port %d: %v", restarted, consulPort, err)
	}
	if d := readDemo(t, root); !contains(d.PIDs, restarted) || contains(d.PIDs, old) || d.Parks[1].ConsulHTTPAddr != p.ConsulHTTPAddr {
		t.Errorf("demo.json after the agent's restart: pids %v, consul %s; want %d, not %d, on %s", d.PIDs, d.Parks[1].ConsulHTTPAddr, restarted, old, p.ConsulHTTPAddr)
	}

	// The agent's management token still works: ACLs are in its data.
	token, err := os.ReadFile(p.ConsulTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := api.NewClient(&api.Config{Address: p.ConsulHTTPAddr, Token: strings.TrimSpace(string(token))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string // one instance of each kind
	var last string
	for deadline := time.Now().Add(60 * time.Second); len(ids) < len(listing.Kinds) && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		ids = ids[:0]
		for _, k := range listing.Kinds {
			entries, _, err := cc.Health().Service(k.ServiceName(), "", true, nil)
			if err != nil || len(entries) != 1 {
				last = fmt.Sprintf("%s: %d passing, %v", k.ServiceName(), len(entries), err)
				break
			}
			ids = append(ids, entries[0].Service.ID)
		}
	}
	if len(ids) < len(listing.Kinds) {
		t.Fatalf("%s: the services are not registered and passing in the restarted agent: %s", p.ID, last)
	}
	all := map[string]int{}
	for _, k := range listing.Kinds {
		all[string(k)] = 1
	}
	waitReadyInstances(t, p, all)
	// The gateway follows the restarted agent: an instance put in
	// maintenance leaves its view, and comes back.
	if err := cc.Agent().EnableServiceMaintenance(ids[0], "demo test: is the gateway's watch live?"); err != nil {
		t.Fatal(err)
	}
	gone := map[string]int{}
	for k, n := range all {
		gone[k] = n
	}
	gone[string(listing.Kinds[0])] = 0
	waitReadyInstances(t, p, gone)
	if err := cc.Agent().DisableServiceMaintenance(ids[0]); err != nil {
		t.Fatal(err)
	}
	waitReadyInstances(t, p, all)
	waitClubSearch(t, p, nil)
}

// waitReadyInstances waits until p's gateway /readyz shows want instances
// of each kind.
func waitReadyInstances(t *testing.T, p local.ParkInfo, want map[string]int) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		res, err := http.Get(p.GatewayURL + "/readyz")
		if err != nil {
			last = err.Error()
			continue
		}
		var body struct{ Instances map[string]int }
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err == nil && maps.Equal(body.Instances, want) {
			return
		}
		last = fmt.Sprintf("%s: instances %v, %v", res.Status, body.Instances, err)
	}
	t.Fatalf("%s gateway /readyz: %s; want instances %v", p.ID, last, want)
}

// restartedPID is the pid a "… is running again (pid N, …)" line names,
// which must not be old.
func restartedPID(t *testing.T, line string, old int) int {
	t.Helper()
	m := regexp.MustCompile(`\(pid (\d+),`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no pid in %q", line)
	}
	pid, _ := strconv.Atoi(m[1])
	if pid == old {
		t.Fatalf("%q: restarted with the old pid %d", line, old)
	}
	return pid
}

// waitTraced makes a club search at p offering a fresh trace context and
// waits until Jaeger holds a gateway trace linking to it (a staff
// client's trace context is not continued: the gateway's trace links to
// the offered one).
func waitTraced(t *testing.T, jaegerQuery string, p local.ParkInfo) {
	t.Helper()
	var b [16]byte
	rand.Read(b[:])
	offered := hex.EncodeToString(b[:])
	h := http.Header{"Traceparent": {"00-" + offered + "-00f067aa0ba902b7-01"}}
	waitClubSearch(t, p, h)
	var found bool
	var last error
	for deadline := time.Now().Add(90 * time.Second); !found && time.Now().Before(deadline); time.Sleep(time.Second) {
		found, last = tracedLinking(jaegerQuery, offered)
	}
	if !found {
		t.Errorf("no gateway trace in Jaeger linking to the club search's trace %s (last: %v)", offered, last)
	}
}

// waitClubSearch asks p's gateway for a club search until it answers
// completely with more than the park's own listings (its club index has
// copied its peers), with header h added.
func waitClubSearch(t *testing.T, p local.ParkInfo, h http.Header) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		own, err := trySearch(p, "")
		if err != nil {
			last = err.Error()
			continue
		}
		req, _ := http.NewRequest("GET", p.GatewayURL+"/api/v1/search?limit=100&scope=club", nil)
		req.Header.Set("Authorization", "Bearer "+p.AdminToken)
		for k, v := range h {
			req.Header[k] = v
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		var page struct {
			Results []json.RawMessage
			Partial bool
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err == nil && res.StatusCode == 200 && !page.Partial && len(page.Results) > own {
			return
		}
		last = fmt.Sprintf("%s, %d results (own %d), partial %v, %v", res.Status, len(page.Results), own, page.Partial, err)
	}
	t.Fatalf("club search from %s: %s", p.ID, last)
}

// tracedLinking reports whether Jaeger holds a parkmesh-gateway trace with
// a span linked to (or in) the trace offered.
func tracedLinking(queryURL, offered string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q := url.Values{"service": {"parkmesh-gateway"}, "limit": {"200"}, "lookback": {"1h"}}
	req, _ := http.NewRequestWithContext(ctx, "GET", queryURL+"/api/traces?"+q.Encode(), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	var body struct{ Data []jaegerserver.Trace }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return false, err
	}
	for _, tr := range body.Data {
		for _, s := range tr.Spans {
			if s.TraceID == offered {
				return true, nil
			}
			for _, r := range s.References {
				if r.TraceID == offered {
					return true, nil
				}
			}
		}
	}
	return false, fmt.Errorf("%d gateway traces, none linked to %s", len(body.Data), offered)
}

func portOf(t *testing.T, u string) int {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	_, ps, _ := net.SplitHostPort(pu.Host)
	n, err := strconv.Atoi(ps)
	if err != nil {
		t.Fatalf("no port in %s", u)
	}
	return n
}

// listeningPID returns which of pids listens on port.
func listeningPID(t *testing.T, pids []int, port int) int {
	t.Helper()
	for _, pid := range pids {
		if ok, _ := localproc.Listening(pid, port); ok {
			return pid
		}
	}
	t.Fatalf("none of %v listens on %d", pids, port)
	return 0
}

func readDemo(t *testing.T, root string) local.DemoFile {
	t.Helper()
	var d local.DemoFile
	b, err := os.ReadFile(filepath.Join(root, "demo.json"))
	if err != nil || json.Unmarshal(b, &d) != nil {
		t.Fatalf("demo.json: %v %s", err, b)
	}
	return d
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
