package retry

import (
	"context"
	"testing"
	"time"
)

func TestNewGrowsWithJitterUpToMax(t *testing.T) {
	const initial, max = 100 * time.Millisecond, 2 * time.Second
	b := New(initial, max)
	interval := initial
	for i := range 20 {
		d := b.NextBackOff()
		lo, hi := interval/2, interval*3/2 // ±50% around the current interval
		if d < lo || d > hi {
			t.Errorf("try %d: %v outside [%v, %v]", i, d, lo, hi)
		}
		interval = min(interval*2, max)
	}
	b.Reset()
	if d := b.NextBackOff(); d < initial/2 || d > initial*3/2 {
		t.Errorf("after Reset: %v, want about %v", d, initial)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(t.Context(), time.Millisecond) {
		t.Error("Sleep with a live context reported it ended")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep with an ended context reported it live")
	}
	if time.Since(start) > time.Second {
		t.Error("Sleep waited out its duration after the context ended")
	}
}
