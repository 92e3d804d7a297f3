package sse

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// DefaultRetryAfter is what a refused stream is told to wait before trying
// again: streams are long-lived, so one of the holder's own is unlikely to
// end much sooner.
const DefaultRetryAfter = 10 * time.Second

// Caps bounds the streams one holder (a park-local token, a peer) keeps
// open at once: each costs a connection and a goroutine for as long as it
// lasts. It is safe for concurrent use; the zero value has no limit.
type Caps struct {
	// Max is how many streams one key may hold open; 0 means no limit.
	Max int
	// RetryAfter is the Retry-After of a refusal (DefaultRetryAfter when 0).
	RetryAfter time.Duration

	mu   sync.Mutex
	open map[string]int
}

// Acquire reserves a stream for key. ok is false when key already holds
// Max; otherwise release gives the stream back (call it once, when the
// stream ends).
func (c *Caps) Acquire(key string) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Max > 0 && c.open[key] >= c.Max {
		return nil, false
	}
	if c.open == nil {
		c.open = map[string]int{}
	}
	c.open[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.open[key]--; c.open[key] <= 0 {
				delete(c.open, key)
			}
		})
	}, true
}

// Open returns how many streams key holds open.
func (c *Caps) Open(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[key]
}

// Refuse answers a stream over the cap: 429 with Retry-After and the
// standard error JSON, before any event is written.
func (c *Caps) Refuse(w http.ResponseWriter, holder string) {
	after := c.RetryAfter
	if after <= 0 {
		after = DefaultRetryAfter
	}
	w.Header().Set("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
	apierror.Write(w, apierror.New(apierror.TooManyRequests,
		"%s already holds %d open streams, the most allowed; close one or retry later", holder, c.Max))
}
