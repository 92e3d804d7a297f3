package local

import (
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
