package local_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/local"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
)

// demoRun is a running demo launcher (what `make demo` runs).
type demoRun struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	// log is everything the console printed so far that the test read.
	log  strings.Builder
	demo local.DemoFile
	// stop sends SIGINT and waits for the launcher to exit.
	stop func()
}

// runDemo starts the demo launcher and returns once demo.json is written,
// with its content; stop is also called when the test ends.
func runDemo(t *testing.T, bin, root string, args []string) *demoRun {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-root", root}, args...)...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &demoRun{t: t, cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
	}()
	if _, err := d.waitLine("Press Ctrl-C to stop", 3*time.Minute); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("demo not up: %v:\n%s", err, d.log.String())
	}
	b, err := os.ReadFile(filepath.Join(root, "demo.json"))
	if err != nil || json.Unmarshal(b, &d.demo) != nil {
		t.Fatalf("demo.json: %v %s", err, b)
	}
	stopped := false
	d.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() {
			for l := range d.lines {
				d.log.WriteString(l + "\n")
			}
			done <- cmd.Wait()
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo exit: %v\n%s", err, d.log.String())
			}
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("demo did not stop within 90s of SIGINT")
		}
	}
	// A test that fails before it stops the demo must not leave three
	// parks running on fixed ports.
	t.Cleanup(d.stop)
	return d
}

// waitLine reads the console until a line contains want and returns it; an
// error when the demo exits or timeout passes first.
func (d *demoRun) waitLine(want string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				return "", fmt.Errorf("demo exited before printing %q", want)
			}
			d.log.WriteString(l + "\n")
			if strings.Contains(l, want) {
				return l, nil
			}
		case <-deadline:
			return "", fmt.Errorf("no %q on the console after %s", want, timeout)
		}
	}
}

// buildDemo builds the demo launcher and moves the test to the repository,
// where the launcher builds the parks' binaries.
func buildDemo(t *testing.T) string {
	t.Helper()
	_ = nodetest.Binaries(t) // fail early, with the build error, if something does not build
	wd, _ := os.Getwd()
	repo, err := localproc.RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "demo")
	build := exec.Command("go", "build", "-o", bin, "./deploy/local/cmd/demo")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build demo: %v\n%s", err, out)
	}
	t.Chdir(repo)
	return bin
}

func alive(pid int) bool {
	// A zombie is not alive: read its state.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func search(t *testing.T, p local.ParkInfo, q string) int {
	t.Helper()
	n, err := trySearch(p, q)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// trySearch is one search at p: the number of results, or why there is
// no complete answer (a club search is partial while the club index still
// copies a peer).
func trySearch(p local.ParkInfo, q string) (int, error) {
	req, _ := http.NewRequest("GET", p.GatewayURL+"/api/v1/search?limit=100&"+q, nil)
	req.Header.Set("Authorization", "Bearer "+p.AdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("search %s: %v", p.ID, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var page struct {
		Results []json.RawMessage
		Partial bool
	}
	if res.StatusCode != 200 || json.Unmarshal(b, &page) != nil || page.Partial {
		return 0, fmt.Errorf("search %s: %d %s", p.ID, res.StatusCode, b)
	}
	return len(page.Results), nil
}

// TestDemoSmoke runs the demo as `make demo` does (on other ports, in a temp
// root), searches every park through its gateway, stops it with SIGINT and
// checks that no process is left; a second run keeps the first one's data.
// The demo tests give the demo fixed ports (as a person running it gets)
// between 32000 and 32767: above the range other tests draw their ports
// from at random (deploy/testenv/localproc, 10000–32000), below Linux's
// ephemeral range, so no parallel test or outgoing connection takes one
// between the demo's two runs (one did, with the earlier 27100).

func TestDemoSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short: the demo smoke test starts three whole parks")
	}
	bin := buildDemo(t)
	root := t.TempDir()
	ports := []string{"-gateway-port", "32010", "-service-port", "32200", "-consul-port", "32300", "-jaeger-port", "0"}

	run := runDemo(t, bin, root, ports)
	demo, stop := run.demo, run.stop
	if len(demo.Parks) != 3 {
		t.Fatalf("demo.json has %d parks", len(demo.Parks))
	}
	counts := map[string]int{}
	for _, p := range demo.Parks {
		if p.AdminToken == "" || p.ConsulHTTPAddr == "" {
			t.Errorf("park %s incomplete in demo.json: %+v", p.ID, p)
		}
		if fi, err := os.Stat(p.ConsulTokenFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("park %s: Consul management token file %q: %v (want mode 0600)", p.ID, p.ConsulTokenFile, err)
		}
		signIn(t, p)
		counts[p.ID] = search(t, p, "")
		// Club search: the three parks are peers; once each gateway's club
		// index has copied its peers (live), it finds more than its own.
		club, err := 0, error(nil)
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if club, err = trySearch(p, "scope=club"); err == nil && club > counts[p.ID] {
				break
			}
		}
		if err != nil || club <= counts[p.ID] {
			t.Errorf("club search from %s: %d listings (its own %d), %v", p.ID, club, counts[p.ID], err)
		}
		if counts[p.ID] < 15 {
			t.Errorf("park %s holds %d listings, want its sample (≥ 15)", p.ID, counts[p.ID])
		}
	}
	stop()
	for _, pid := range demo.PIDs {
		if alive(pid) {
			t.Errorf("process %d still running after the demo stopped", pid)
		}
	}

	run2 := runDemo(t, bin, root, ports)
	demo2, log2 := run2.demo, run2.log.String()
	if !strings.Contains(log2, "keeping the data of an earlier run") {
		t.Errorf("second run reloaded the sample:\n%s", log2)
	}
	// The Consul agents keep their state on disk: the peerings survived
	// the restart, none had to be made again.
	if strings.Contains(log2, "peered ") {
		t.Errorf("second run had to peer the parks again (Consul forgot the peerings):\n%s", log2)
	}
	for _, p := range demo2.Parks {
		if got := search(t, p, ""); got != counts[p.ID] {
			t.Errorf("park %s: %d listings after restart, %d before", p.ID, got, counts[p.ID])
		}
	}
}

// signIn signs in to p's portal as the demo's account, with the password
// from the file the demo names, as a person following its console would.
func signIn(t *testing.T, p local.ParkInfo) {
	t.Helper()
	fi, err := os.Stat(p.PortalPasswordFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("park %s: portal password file %q: %v (want mode 0600)", p.ID, p.PortalPasswordFile, err)
		return
	}
	pw, _ := os.ReadFile(p.PortalPasswordFile)
	body, _ := json.Marshal(map[string]string{"username": local.PortalUser, "password": strings.TrimSpace(string(pw))})
	res, err := http.Post(p.GatewayURL+"/api/v1/session", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Errorf("park %s: sign-in: %v", p.ID, err)
		return
	}
	defer res.Body.Close()
	var s struct {
		User struct{ Role string } `json:"user"`
	}
	if err := json.NewDecoder(res.Body).Decode(&s); res.StatusCode != 200 || err != nil || s.User.Role != "admin" {
		t.Errorf("park %s: portal sign-in as %s: %d %v, role %q", p.ID, local.PortalUser, res.StatusCode, err, s.User.Role)
	}
}
