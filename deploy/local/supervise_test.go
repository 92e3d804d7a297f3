package local

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRestartPolicy: the wait doubles while a process crashes soon after
// each start, is capped, goes back to the first after a stable run, and
// the policy gives up at the crash count within the window.
func TestRestartPolicy(t *testing.T) {
	rp := RestartPolicy{First: time.Second, Max: 4 * time.Second, Stable: time.Minute, Crashes: 5, Window: 5 * time.Minute}.withDefaults()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	type crash struct {
		upFor    time.Duration // since the latest start
		wantWait time.Duration
		wantGive bool
	}
	tests := []struct {
		name    string
		crashes []crash
	}{
		{"doubling to the cap", []crash{{10 * time.Second, time.Second, false}, {time.Second, 2 * time.Second, false}, {time.Second, 4 * time.Second, false}, {time.Second, 4 * time.Second, false}}},
		{"stable run resets the wait", []crash{{time.Second, time.Second, false}, {time.Second, 2 * time.Second, false}, {2 * time.Minute, time.Second, false}}},
		{"gives up at the fifth crash in the window", []crash{{time.Second, time.Second, false}, {time.Second, 2 * time.Second, false}, {time.Second, 4 * time.Second, false}, {time.Second, 4 * time.Second, false}, {time.Second, 0, true}}},
		{"old crashes leave the window", []crash{{time.Second, time.Second, false}, {time.Second, 2 * time.Second, false}, {time.Second, 4 * time.Second, false}, {time.Second, 4 * time.Second, false}, {6 * time.Minute, time.Second, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &crashHistory{started: t0}
			for i, c := range tt.crashes {
				now := h.started.Add(c.upFor)
				wait, give := rp.crashed(h, now)
				if wait != c.wantWait || give != c.wantGive {
					t.Fatalf("crash %d: wait %s, give up %v; want %s, %v", i+1, wait, give, c.wantWait, c.wantGive)
				}
				h.started = now.Add(wait)
			}
		})
	}
}

// testCluster is a cluster with nothing running, for its supervisors:
// restarts wait 1 ms, doubling, and give up at the third crash.
func testCluster(t *testing.T) (*Cluster, *strings.Builder) {
	var out strings.Builder
	c := &Cluster{out: newConsole(&out)}
	c.cfg.Restart = RestartPolicy{First: time.Millisecond, Max: 4 * time.Millisecond, Stable: time.Minute, Crashes: 3, Window: time.Minute}.withDefaults()
	c.bgCtx, c.cancel = context.WithCancel(context.Background())
	t.Cleanup(c.cancel)
	return c, &out
}

// TestRestartPolicyConsole: a start that fails is retried after a longer
// wait and said so; a process that never starts is given up on.
func TestRestartPolicyConsole(t *testing.T) {
	c, out := testCluster(t)
	fails := 1
	start := func(context.Context) (int, string, error) {
		if fails > 0 {
			fails--
			return 0, "", errors.New("port 1 in use\nmore detail")
		}
		return 8, "127.0.0.1:1", nil
	}
	cr := crash{what: "p consul", pid: 7, exitErr: errors.New("signal: killed"), logPath: "/l", start: start}
	if !c.restart(cr, &crashHistory{started: time.Now()}) {
		t.Fatalf("restart gave up:\n%s", out)
	}
	want := "p consul (pid 7) exited: signal: killed; restarting it in 1ms (its log: /l)\n" +
		"p consul did not start again: port 1 in use; restarting it in 2ms (its log: /l)\n" +
		"p consul is running again (pid 8, 127.0.0.1:1)\n"
	if out.String() != want {
		t.Errorf("console:\n%s\nwant:\n%s", out, want)
	}

	out.Reset()
	fails = 100
	if c.restart(cr, &crashHistory{started: time.Now()}) {
		t.Fatal("a process that never starts counted as running")
	}
	if got := out.String(); strings.Count(got, "restarting it in") != 2 || !strings.Contains(got, "it crashed 3 times within 1m0s, so it stays down (its log: /l)") {
		t.Errorf("console of a process given up on:\n%s", got)
	}
}

// fakeProcess is a start of a program keepUp watches.
type fakeProcess struct {
	pid     int
	done    chan struct{}
	stopped bool
}

func newFake(pid int) *fakeProcess { return &fakeProcess{pid: pid, done: make(chan struct{})} }

func (f *fakeProcess) Done() <-chan struct{} { return f.done }
func (f *fakeProcess) Stopped() bool         { return f.stopped }
func (f *fakeProcess) PID() int              { return f.pid }
func (f *fakeProcess) LogPath() string       { return "/log" }
func (f *fakeProcess) Err() error {
	if f.stopped {
		return nil
	}
	return errors.New("signal: killed")
}

// TestRestartPolicyKeepUp: each crash of the latest start is restarted,
// the new start watched in its turn; a requested stop is not a crash.
func TestRestartPolicyKeepUp(t *testing.T) {
	c, out := testCluster(t)
	starts := make(chan *fakeProcess, 3)
	first := newFake(10)
	ended := make(chan struct{})
	n := 0 // starts again, read by the test after ended
	go func() {
		defer close(ended)
		c.keepUp("jaeger", first, func(context.Context) (process, string, error) {
			n++
			np := newFake(10 + n)
			starts <- np
			return np, "http://q", nil
		})
	}()
	close(first.done) // a crash
	second := <-starts
	close(second.done) // another, of the new start
	third := <-starts
	third.stopped = true // asked to stop: keepUp leaves it
	close(third.done)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("keepUp still watching a process stopped on request")
	}
	want := "jaeger (pid 10) exited: signal: killed; restarting it in 1ms (its log: /log)\n" +
		"jaeger is running again (pid 11, http://q)\n" +
		"jaeger (pid 11) exited: signal: killed; restarting it in 2ms (its log: /log)\n" +
		"jaeger is running again (pid 12, http://q)\n"
	if out.String() != want {
		t.Errorf("console:\n%s\nwant:\n%s", out, want)
	}
	if n != 2 {
		t.Errorf("%d starts again, want 2: a process stopped on request is left", n)
	}
}
