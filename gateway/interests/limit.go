package interests

import (
	"sync"
	"time"
)

// DefaultRatePerHour is how many new interests one peer may deliver per
// hour unless configured otherwise.
const DefaultRatePerHour = 30

// limiter is a token bucket per peer: perHour tokens at most, refilled at
// perHour an hour. It is per gateway replica (a peer spreading its
// deliveries over n replicas gets up to n times the rate).
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// take uses one of peer's tokens; when there is none it says how long
// until there is.
func (l *limiter) take(peer string, perHour int, now time.Time) (wait time.Duration, ok bool) {
	if perHour <= 0 {
		perHour = DefaultRatePerHour
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	b := l.buckets[peer]
	if b == nil {
		b = &bucket{tokens: float64(perHour), at: now}
		l.buckets[peer] = b
	}
	rate := float64(perHour) / float64(time.Hour) // tokens per nanosecond
	b.tokens = min(float64(perHour), b.tokens+float64(now.Sub(b.at))*rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1-b.tokens)/rate) + time.Second, false
}
