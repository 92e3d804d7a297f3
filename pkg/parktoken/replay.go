package parktoken

import (
	"container/heap"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultReplayPerIssuer is how many unexpired federation tokens of one
// peer a ReplayCache remembers by default. A token lives at most
// MaxFederationTTL plus Leeway, so this allows a peer about 200 requests a
// second, sustained, which is far more than a park's staff make.
const DefaultReplayPerIssuer = 65536

var (
	errReplayed     = errors.New("jti already used")
	errReplayIsFull = errors.New("too many unexpired tokens of this issuer to remember another")
)

// ReplayCache remembers the jti of every federation token a
// FederationVerifier accepted, per issuer, until the token expires, so each
// token is usable once (RFC 8725 §3.10 leaves this to the application; the
// DESIGN asks for it). Memory is bounded: at most MaxPerIssuer entries per
// issuer, and only tokens that verified (signed by a pinned key of an
// active peer) reach it, so nobody else can fill it. A full issuer's next
// token is refused rather than accepted unremembered.
//
// It lives in one process: a token replayed to another replica of the
// same park within its few minutes of life is not caught there (see
// docs/decisions.md).
type ReplayCache struct {
	maxPerIssuer int

	mu      sync.Mutex
	issuers map[string]*jtiSet
}

// NewReplayCache returns a cache holding at most maxPerIssuer unexpired
// jtis per issuer (DefaultReplayPerIssuer when maxPerIssuer ≤ 0).
func NewReplayCache(maxPerIssuer int) *ReplayCache {
	if maxPerIssuer <= 0 {
		maxPerIssuer = DefaultReplayPerIssuer
	}
	return &ReplayCache{maxPerIssuer: maxPerIssuer, issuers: map[string]*jtiSet{}}
}

// Len returns how many jtis the cache holds for iss (expired ones not yet
// swept included).
func (c *ReplayCache) Len(iss string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.issuers[iss]; s != nil {
		return len(s.until)
	}
	return 0
}

// seen reports whether iss's jti is remembered and not yet forgotten.
func (c *ReplayCache) seen(iss, jti string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.issuers[iss]
	if s == nil {
		return false
	}
	until, ok := s.until[jti]
	return ok && now.Before(until)
}

// use remembers iss's jti until forget, or refuses it (an *Error, reason
// replay or replay_capacity) when it is remembered already or the issuer's
// set is full.
func (c *ReplayCache) use(iss, jti string, forget, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.issuers[iss]
	if s == nil {
		s = &jtiSet{until: map[string]time.Time{}}
		c.issuers[iss] = s
	}
	s.sweep(now)
	if until, ok := s.until[jti]; ok && now.Before(until) {
		return unauthorized(ReasonReplay, errReplayed)
	}
	if len(s.until) >= c.maxPerIssuer {
		return unauthorized(ReasonReplayCapacity, fmt.Errorf("%w (%d)", errReplayIsFull, c.maxPerIssuer))
	}
	s.until[jti] = forget
	heap.Push(&s.order, entry{jti: jti, until: forget})
	return nil
}

// jtiSet is one issuer's remembered jtis, with a min-heap by expiry so
// sweeping costs only what it removes.
type jtiSet struct {
	until map[string]time.Time
	order expiries
}

func (s *jtiSet) sweep(now time.Time) {
	for len(s.order) > 0 && !now.Before(s.order[0].until) {
		e := heap.Pop(&s.order).(entry)
		if s.until[e.jti].Equal(e.until) {
			delete(s.until, e.jti)
		}
	}
}

type entry struct {
	jti   string
	until time.Time
}

type expiries []entry

func (h expiries) Len() int           { return len(h) }
func (h expiries) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiries) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiries) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *expiries) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
