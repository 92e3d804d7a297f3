package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/logbuf"
)

// writeScript installs a shell script as the "binary" the way Tilt's live
// update does: a new file renamed over the old one.
func writeScript(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// server prints its version, then runs until SIGTERM and exits with code.
// The trap is set before "started" is printed: a SIGTERM sent as soon as
// the test reads it must find the trap (under load it did not).
func server(version string, code int) string {
	return "trap 'echo stopped " + version + "; exit " + strconv.Itoa(code) + "' TERM\necho started " + version + "\nwhile :; do sleep 0.05; done\n"
}

func waitFor(t *testing.T, out *logbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never contained %q; got:\n%s", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type result struct{ code int }

func start(t *testing.T, ctx context.Context, args []string) (stdout, stderr *logbuf.Buffer, done <-chan result) {
	t.Helper()
	stdout, stderr = &logbuf.Buffer{}, &logbuf.Buffer{}
	ch := make(chan result, 1)
	go func() { ch <- result{run(ctx, args, stdout, stderr)} }()
	return stdout, stderr, ch
}

func wait(t *testing.T, done <-chan result) int {
	t.Helper()
	select {
	case r := <-done:
		return r.code
	case <-time.After(10 * time.Second):
		t.Fatal("devrun did not return")
		return -1
	}
}

func TestRestartsReplacedBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "app")
	writeScript(t, bin, server("v1", 0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr, done := start(t, ctx, []string{"-poll", "20ms", bin})
	waitFor(t, stdout, "started v1")

	writeScript(t, bin, server("v2", 3))
	waitFor(t, stdout, "stopped v1")
	waitFor(t, stdout, "started v2")
	if !strings.Contains(stderr.String(), "replaced; restarting") {
		t.Errorf("stderr does not say why it restarted: %s", stderr.String())
	}

	// SIGTERM to devrun (the cancelled context) reaches the process and
	// devrun exits with the process's status.
	cancel()
	if got := wait(t, done); got != 3 {
		t.Errorf("exit code = %d, want 3 (the process's)", got)
	}
	waitFor(t, stdout, "stopped v2")
}

func TestCrashWaitsForNextBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "app")
	writeScript(t, bin, "echo crashing\nexit 7\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr, done := start(t, ctx, []string{"-poll", "20ms", bin})
	waitFor(t, stderr, "waiting for a new binary")
	select {
	case r := <-done:
		t.Fatalf("devrun returned %d after a crash; it should wait for a new binary", r.code)
	case <-time.After(200 * time.Millisecond):
	}
	writeScript(t, bin, server("fixed", 0))
	waitFor(t, stdout, "started fixed")
	cancel()
	if got := wait(t, done); got != 0 {
		t.Errorf("exit code = %d, want 0", got)
	}
}

func TestKillsAfterGrace(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "app")
	writeScript(t, bin, "echo stubborn\ntrap '' TERM\nwhile :; do sleep 0.05; done\n")
	ctx, cancel := context.WithCancel(context.Background())
	stdout, _, done := start(t, ctx, []string{"-poll", "20ms", "-grace", "200ms", bin})
	waitFor(t, stdout, "stubborn")
	began := time.Now()
	cancel()
	if got := wait(t, done); got == 0 {
		t.Errorf("exit code = 0 for a killed process")
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("stopping took %s; the grace period is 200ms", d)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"-poll", "0", "x"}, {"-bogus"}} {
		_, stderr, done := start(t, context.Background(), args)
		if got := wait(t, done); got != 2 {
			t.Errorf("run(%q) = %d, want 2", args, got)
		}
		if !strings.Contains(stderr.String(), "usage") && !strings.Contains(stderr.String(), "not defined") {
			t.Errorf("run(%q) stderr = %q", args, stderr.String())
		}
	}
}
