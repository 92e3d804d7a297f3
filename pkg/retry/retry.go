// Package retry is ParkMesh's one retry schedule, used wherever a process
// reconnects or retries: the gateway tailing the services' logs, following
// peers' feeds and watching Consul KV, and every process keeping itself
// registered in Consul. (Webhook deliveries keep a durable per-delivery
// schedule in the gateway's state instead: it must survive restarts.)
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// New is the gateway's one retry schedule (reconnecting to feeds,
// tailing logs, watching Consul): exponential from initial, capped at max,
// with ±50 % jitter so many gateways do not retry in step, and no overall
// limit (the caller's context ends it).
func New(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = initial, max
	b.RandomizationFactor = 0.5
	b.Multiplier = 2
	b.Reset()
	return b
}

// Sleep waits d or until ctx ends; it reports whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
