package launcher_test

import (
	"context"
	"errors"
	"net"
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
	"github.com/parkmesh/parkmesh/deploy/testenv/launcher"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// config returns a park's configuration, with the binaries nodetest builds
// once per test binary, in the test's temporary directory. With -short the
// test is skipped; without, a missing Consul fails it.
func config(t *testing.T, id string) launcher.Config {
	t.Helper()
	bin := nodetest.Binaries(t)
	dir := t.TempDir()
	return launcher.Config{
		ID: id, BinDir: bin, ConsulBin: consultest.Binary(t), DataDir: filepath.Join(dir, "data"), LogDir: filepath.Join(dir, "logs"),
		ReadyTimeout: 30 * time.Second, Logf: t.Logf,
	}
}

func start(t *testing.T, cfg launcher.Config) *launcher.Park {
	t.Helper()
	p, err := launcher.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// thief is a port chooser that, like another process drawing ports at the
// same moment, takes the first port of every other draw before the caller
// can bind it: each process's first start finds its port in use. It
// answers HTTP there with 200 to everything, as another park's service
// would, so a launcher trusting any answer on the port would be fooled.
type thief struct {
	t     *testing.T
	mu    sync.Mutex
	draws int
	held  []int
}

func (th *thief) choose(n int) ([]int, error) {
	ports, err := localproc.FreePorts(n)
	if err != nil {
		return nil, err
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	th.draws++
	if th.draws%2 == 1 {
		// Taken by the thief, or (if this fails) already by someone else:
		// either way the launcher must move on.
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))); err == nil {
			go http.Serve(l, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			th.t.Cleanup(func() { l.Close() })
		}
		th.held = append(th.held, ports[0])
	}
	return ports, nil
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestStartRetriesOnTakenPorts takes the first port drawn for each process
// of a park, the race `make test` once lost while `make demo` ran, and
// checks that the agent, every service and the gateway still come up, each
// on ports of a later draw, and that the services and the gateway were
// really started and failed to bind (the process's exit and log are what
// the launcher reads; no check before start can close that race).
func TestStartRetriesOnTakenPorts(t *testing.T) {
	t.Parallel()
	th := &thief{t: t}
	cfg := config(t, "retry-park")
	cfg.Choose = th.choose
	p := start(t, cfg)

	held := map[int]bool{}
	for _, port := range th.held {
		held[port] = true
	}
	used := []int{p.Agent.Options().HTTPPort, portOf(t, p.Gateway().Addr), portOf(t, p.Gateway().FederationAddr)}
	for _, k := range listing.Kinds {
		used = append(used, portOf(t, p.Services(k)[0].Addr))
	}
	for _, port := range used {
		if held[port] {
			t.Errorf("a process of the park is on port %d, which another process held", port)
		}
	}
	// Five processes, each drawn for twice: once into a taken port, once not.
	if th.draws < 10 {
		t.Errorf("ports drawn %d times, want at least 10 (a retry per process)", th.draws)
	}
	for _, pr := range p.Procs() {
		if log := pr.Log(); !strings.Contains(log, "address already in use") || strings.Count(log, "==> parkmesh launcher") < 2 {
			t.Errorf("%s: its log shows no failed start on a taken port:\n%s", pr.Name, log)
		}
	}
	if got, err := p.Instances(t.Context()); err != nil || got["project"] != 1 {
		t.Errorf("Instances() = %v, %v; want one project service", got, err)
	}
}

// TestFixedPortInUseIsReported: the demo's ports are documented, so a
// taken one is not swapped for another but reported, naming the address.
func TestFixedPortInUseIsReported(t *testing.T) {
	t.Parallel()
	cfg := config(t, "fixed-park")
	free, err := localproc.FreePorts(9)
	if err != nil {
		t.Fatal(err)
	}
	// Taken here, or (if this fails) already by someone else.
	if taken, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(free[7]))); err == nil {
		defer taken.Close()
	}
	cfg.Ports = &launcher.FixedPorts{
		Consul:   [4]int{free[0], free[1], free[2], free[3]},
		Services: map[listing.Kind]int{listing.KindOrganization: free[4], listing.KindProject: free[5], listing.KindTalent: free[6]},
		Gateway:  free[7], Federation: free[8],
	}
	p, err := launcher.Start(t.Context(), cfg)
	if err == nil {
		p.Kill()
		t.Fatal("Start succeeded with the gateway's fixed port taken")
	}
	addr := "127.0.0.1:" + strconv.Itoa(free[7])
	if !errors.Is(err, localproc.ErrAddrInUse) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "fixed port") {
		t.Fatalf("Start error = %v, want a fixed port in use naming %s", err, addr)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// TestRestartCrashAndStop restarts the gateway where peers know it, sees a
// crashed service reported and starts it again as it was, and stops the
// park with nothing left running.
func TestRestartCrashAndStop(t *testing.T) {
	t.Parallel()
	p := start(t, config(t, "stop-park"))
	first, gw, fed := p.Gateway(), p.GatewayURL(), p.FederationURL()
	if _, err := p.RestartGateway(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p.GatewayURL() != gw || p.FederationURL() != fed {
		t.Errorf("gateway restarted on %s and %s, was on %s and %s", p.GatewayURL(), p.FederationURL(), gw, fed)
	}
	replica, err := p.StartReplica(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if replica.Addr == p.Gateway().Addr || replica.FederationAddr == "" {
		t.Errorf("replica on %s/%s beside the gateway on %s", replica.Addr, replica.FederationAddr, p.Gateway().Addr)
	}

	// A crash, not a requested stop, is reported.
	crashed := p.Services(listing.KindTalent)[0]
	if err := syscall.Kill(crashed.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case pr := <-p.Exited():
		if pr != crashed {
			t.Errorf("Exited() reported %s %s, want the killed talent service", pr.Name, pr.Addr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a crashed service was not reported")
	}

	// Restarted, it is the same instance again: same address, same log
	// file, and the gateway sees one talent instance, not a dead one beside
	// a live one.
	again, err := p.Restart(t.Context(), crashed)
	if err != nil {
		t.Fatal(err)
	}
	if again.PID() == crashed.PID() || again.Addr != crashed.Addr || again.LogPath() != crashed.LogPath() {
		t.Errorf("restarted talent: pid %d on %s logging to %s; was pid %d on %s logging to %s",
			again.PID(), again.Addr, again.LogPath(), crashed.PID(), crashed.Addr, crashed.LogPath())
	}
	if got := p.Services(listing.KindTalent); len(got) != 1 || got[0] != again {
		t.Errorf("Services(talent) = %v after the restart, want only the new process", got)
	}
	if n := strings.Count(again.Log(), "==> parkmesh launcher"); n != 2 {
		t.Errorf("%s holds %d start headers, want 2 (the first start and the restart)", again.LogPath(), n)
	}
	if err := p.WaitInstances(t.Context(), map[listing.Kind]int{listing.KindTalent: 1}); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	if _, err := p.Restart(t.Context(), again); err == nil {
		t.Error("Restart of a running process succeeded")
	}

	pids := p.PIDs()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still running after Stop", pid)
		}
	}
	for _, pr := range p.Procs() {
		if pr != crashed && pr != first && pr.ExitErr() != nil {
			t.Errorf("%s %s ended with %v after SIGTERM, want a clean exit", pr.Name, pr.Addr, pr.ExitErr())
		}
	}
	select {
	case pr := <-p.Exited():
		t.Errorf("Exited() reported %s %s, stopped on request", pr.Name, pr.Addr)
	default:
	}
}
