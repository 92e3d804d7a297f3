package local_test

import (
	"bufio"
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

// runDemo starts the demo launcher (what `make demo` runs) and returns once
// demo.json is written, with its content and a stop function that sends
// SIGINT and waits for the launcher to exit.
func runDemo(t *testing.T, bin, root string, ports []string) (local.DemoFile, string, func()) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-root", root}, ports...)...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 256)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(3 * time.Minute)
	for up := false; !up; {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("demo exited before it was up:\n%s", log.String())
			}
			log.WriteString(l + "\n")
			up = strings.Contains(l, "Press Ctrl-C to stop")
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("demo not up after 3 minutes:\n%s", log.String())
		}
	}
	var demo local.DemoFile
	b, err := os.ReadFile(filepath.Join(root, "demo.json"))
	if err != nil || json.Unmarshal(b, &demo) != nil {
		t.Fatalf("demo.json: %v %s", err, b)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() {
			for l := range lines {
				log.WriteString(l + "\n")
			}
			done <- cmd.Wait()
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo exit: %v\n%s", err, log.String())
			}
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("demo did not stop within 90s of SIGINT")
		}
	}
	// A test that fails before it stops the demo must not leave three
	// parks running on fixed ports.
	t.Cleanup(stop)
	return demo, log.String(), stop
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
func TestDemoSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short: the demo smoke test starts three whole parks")
	}
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
	root := t.TempDir()
	base := nodetest.FreePort(t)
	ports := []string{"-gateway-port", fmt.Sprint(base), "-service-port", "27100", "-consul-port", "28500", "-jaeger-port", "0"}
	// The launcher runs from the repository (it builds the binaries there).
	t.Chdir(repo)

	demo, _, stop := runDemo(t, bin, root, ports)
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

	demo2, log2, stop2 := runDemo(t, bin, root, ports)
	defer stop2()
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
