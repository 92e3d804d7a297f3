package local_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
)

// TestDemoFirstRunAndRestart runs the demo as on a first run, with
// Jaeger's build still going (a stand-in install command that waits for
// the test, then names the real cached Jaeger): club searches answer before
// "the build" ends; a gateway killed with SIGKILL is started again where it
// was and the console says so; once the build ends Jaeger starts, the
// console says where, and a later club search's trace is in Jaeger.
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
	m := regexp.MustCompile(`\(pid (\d+),`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no pid in %q", line)
	}
	restarted, _ := strconv.Atoi(m[1])
	if restarted == old {
		t.Fatalf("gateway restarted with the old pid %d", old)
	}
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

	// The build ends: Jaeger starts, the console says where, and traces
	// of club searches made from then on arrive.
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run.waitLine("traces: "+jaegerQuery+"/api/traces?service=parkmesh-gateway", 60*time.Second); err != nil {
		t.Fatalf("%v:\n%s", err, run.log.String())
	}
	var b [16]byte
	rand.Read(b[:])
	offered := hex.EncodeToString(b[:])
	h := http.Header{"Traceparent": {"00-" + offered + "-00f067aa0ba902b7-01"}}
	waitClubSearch(t, p, h)
	// A staff client's trace context is not continued: the gateway's
	// trace links to the offered one.
	var found bool
	var last error
	for deadline := time.Now().Add(90 * time.Second); !found && time.Now().Before(deadline); time.Sleep(time.Second) {
		found, last = tracedLinking(jaegerQuery, offered)
	}
	if !found {
		t.Errorf("no gateway trace in Jaeger linking to the club search's trace %s (last: %v)", offered, last)
	}
	if j := readDemo(t, root).JaegerURL; j != jaegerQuery {
		t.Errorf("demo.json jaeger_url = %q, want %s", j, jaegerQuery)
	}

	pids := readDemo(t, root).PIDs
	run.stop()
	t.Logf("console:\n%s", run.log.String())
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still running after the demo stopped", pid)
		}
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
