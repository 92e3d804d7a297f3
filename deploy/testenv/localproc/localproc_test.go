package localproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTailFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	os.WriteFile(path, []byte(b.String()), 0o600)
	if got := TailFile(path, 3); got != "line 97\nline 98\nline 99" {
		t.Errorf("TailFile = %q", got)
	}
	if TailFile(filepath.Join(t.TempDir(), "none"), 3) != "" {
		t.Error("missing file gives text")
	}
}

func TestFreePortsAreFreeAndDistinct(t *testing.T) {
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p < portLow || p >= portHigh {
			t.Fatalf("port %d repeated or out of range", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d not free: %v", p, err)
		}
		l.Close()
	}
}

func TestFindBinaryFromEnv(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tool")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	t.Setenv("PARKMESH_TEST_TOOL", bin)
	got, err := FindBinary(t.Context(), "PARKMESH_TEST_TOOL", "deploy/tools/none.sh", nil)
	if err != nil || got != bin {
		t.Fatalf("FindBinary = %q, %v", got, err)
	}
	t.Setenv("PARKMESH_TEST_TOOL", filepath.Join(t.TempDir(), "missing"))
	if _, err := FindBinary(t.Context(), "PARKMESH_TEST_TOOL", "x", nil); err == nil || !strings.Contains(err.Error(), "PARKMESH_TEST_TOOL") {
		t.Errorf("missing binary: err = %v, want one naming the variable", err)
	}
}

func TestProcessStopKillAndErr(t *testing.T) {
	closed := make(chan struct{})
	p, err := StartProcess(exec.Command("sleep", "30"), "sleeper", nil, func() { close(closed) })
	if err != nil {
		t.Fatal(err)
	}
	if p.Err() != nil {
		t.Error("Err while running")
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-closed
	if p.Err() != nil || p.ExitErr() == nil {
		t.Errorf("after Stop: Err %v (want nil), ExitErr %v (want the signal)", p.Err(), p.ExitErr())
	}
	q, _ := StartProcess(exec.Command("sh", "-c", "exit 3"), "failer", nil, nil)
	<-q.Done()
	if q.Err() == nil {
		t.Error("a process that failed on its own reports no error")
	}
	if err := q.Kill(); err != nil {
		t.Errorf("Kill after exit: %v", err)
	}
}

func TestWaitReady(t *testing.T) {
	p, _ := StartProcess(exec.Command("sleep", "30"), "sleeper", nil, nil)
	defer p.Kill()
	tries := 0
	if exited, err := p.WaitReady(t.Context(), func(context.Context) error {
		if tries++; tries < 3 {
			return errors.New("not yet")
		}
		return nil
	}); exited || err != nil || tries != 3 {
		t.Errorf("ready on the third try: exited=%v err=%v tries=%d", exited, err, tries)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if exited, err := p.WaitReady(ctx, func(context.Context) error { return errors.New("never") }); exited || err == nil {
		t.Errorf("never ready: exited=%v err=%v", exited, err)
	}
	q, _ := StartProcess(exec.Command("sh", "-c", "exit 1"), "failer", nil, nil)
	// A check that would hang is cut short when the process dies.
	if exited, _ := q.WaitReady(t.Context(), func(c context.Context) error { <-c.Done(); return c.Err() }); !exited {
		t.Error("an exited process is not reported")
	}
}

func TestOnFreePortsChoosesAgainOnlyForAPortInUse(t *testing.T) {
	inUse := fmt.Errorf("bind: %w", ErrAddrInUse)
	tests := []struct {
		name      string
		failures  []error // what the attempts return before success
		wantErr   bool
		wantDraws int
	}{
		{"first try", nil, false, 1},
		{"taken twice", []error{inUse, inUse}, false, 3},
		{"taken every time", []error{inUse, inUse, inUse, inUse, inUse}, true, StartAttempts},
		{"other failure", []error{errors.New("crashed")}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			draws, attempts := 0, 0
			var got [][]int
			choose := func(n int) ([]int, error) { draws++; return []int{draws * 10, draws*10 + 1}[:n], nil }
			v, err := OnFreePorts(choose, 2, t.Logf, func(ports []int) (string, error) {
				got = append(got, ports)
				if attempts++; attempts <= len(tt.failures) {
					return "", tt.failures[attempts-1]
				}
				return "up", nil
			})
			if (err != nil) != tt.wantErr || draws != tt.wantDraws {
				t.Fatalf("OnFreePorts = %q, %v after %d draws; want error %v after %d", v, err, draws, tt.wantErr, tt.wantDraws)
			}
			if !tt.wantErr && v != "up" {
				t.Errorf("value = %q, want up", v)
			}
			if len(got) > 1 && got[0][0] == got[len(got)-1][0] {
				t.Errorf("retried on the same ports %v", got)
			}
		})
	}
}

func TestCheckPortsNamesTheTakenAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	free, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPorts("tcp", "127.0.0.1", free[0]); err != nil {
		t.Errorf("CheckPorts on a free port: %v", err)
	}
	err = CheckPorts("tcp", "127.0.0.1", free[0], taken)
	if !errors.Is(err, ErrAddrInUse) || !strings.Contains(err.Error(), fmt.Sprint(taken)) {
		t.Errorf("CheckPorts = %v, want ErrAddrInUse naming %d", err, taken)
	}
}

// sh stands in for a server: Launch knows processes only by their exit,
// their log and the readiness probe.
func shSpec(t *testing.T, logPath, script string) Spec {
	return Spec{
		Name: "sh", Bin: "sh", Args: []string{"-c", script},
		RunOptions: RunOptions{LogPath: logPath, KillWithParent: true, ReadyTimeout: 5 * time.Second},
		Ready: func(_ context.Context, p *Process) error {
			if !strings.Contains(p.LogSinceStart(), "serving") {
				return errors.New("not serving yet")
			}
			return nil
		},
	}
}

func TestLaunchWaitsForItsOwnStart(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "sh.log")
	p, err := Launch(t.Context(), shSpec(t, logPath, "sleep 0.2; echo serving; exec sleep 30"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The same log file: the first start's "serving" must not make the
	// second one look ready.
	_, err = Launch(t.Context(), shSpec(t, logPath, "sleep 0.2; echo starting; exit 4"))
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 4") {
		t.Fatalf("second Launch = %v, want ErrExited with its exit status", err)
	}
	if strings.Count(TailFile(logPath, 10), "==> parkmesh launcher") != 2 {
		t.Errorf("log does not mark both starts:\n%s", TailFile(logPath, 10))
	}
}

func TestLaunchRecognisesAPortInUse(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "sh.log")
	_, err := Launch(t.Context(), shSpec(t, logPath, `echo '-listen: listen tcp 127.0.0.1:8080: bind: address already in use' >&2; exit 1`))
	if !errors.Is(err, ErrExited) || !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("Launch = %v, want ErrExited and ErrAddrInUse", err)
	}
	_, err = Launch(t.Context(), shSpec(t, logPath, `echo 'no such flag: -bind' >&2; exit 2`))
	if !errors.Is(err, ErrExited) || errors.Is(err, ErrAddrInUse) {
		t.Fatalf("Launch = %v, want ErrExited only: the port in use was the previous start's", err)
	}
}

func TestListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	got, err := Listening(os.Getpid(), port)
	if errors.Is(err, ErrCannotTell) {
		// Every machine the project runs on is Linux with /proc; the
		// launcher's readiness depends on it, so its absence is a failure.
		t.Fatalf("Listening cannot tell on this machine (no /proc?): %v", err)
	}
	if err != nil || !got {
		t.Fatalf("Listening(self, %d) = %v, %v with a listener open", port, got, err)
	}
	// A sleeping child holds no socket: another process's listener must
	// never count for it.
	p, err := StartProcess(exec.Command("sleep", "30"), "sleeper", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if got, err := Listening(p.PID(), port); err != nil || got {
		t.Errorf("Listening(child, %d) = %v, %v; the listener is the test's", port, got, err)
	}
	l.Close()
	if got, err := Listening(os.Getpid(), port); err != nil || got {
		t.Errorf("Listening(self, %d) = %v, %v after Close", port, got, err)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot = %s without go.mod: %v", root, err)
	}
}

func TestCheckOptions(t *testing.T) {
	tests := []struct {
		name, bin string
		ports     []Port
		want      string // "" for valid
	}{
		{"valid", "tool", []Port{{"HTTPPort", 1}, {"OtherPort", 65535}}, ""},
		{"no binary", "", []Port{{"HTTPPort", 1}}, "Bin"},
		{"zero port", "tool", []Port{{"HTTPPort", 1}, {"OtherPort", 0}}, "OtherPort"},
		{"too high", "tool", []Port{{"HTTPPort", 65536}}, "HTTPPort"},
	}
	for _, tt := range tests {
		err := CheckOptions(tt.bin, tt.ports...)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: CheckOptions = %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
}
