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
