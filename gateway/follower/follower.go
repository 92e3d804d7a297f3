// Package follower follows every peer's federation feed into the club
// index: one stream per active peer, starting with a full copy of what the
// peer lets this park see, then live, resumed with Last-Event-ID after any
// disconnect (with backoff), each event validated and applied
// idempotently. A peer removed from the club stops being followed at once.
package follower

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
	"github.com/parkmesh/parkmesh/pkg/retry"
)

// DefaultIdleTimeout is Follower.IdleTimeout's default: three of a peer's
// default heartbeats.
const DefaultIdleTimeout = 45 * time.Second

// Index is where the follower applies what it reads (the club index).
type Index interface {
	// Position is the SSE id of the last event applied from peer ("" for
	// none).
	Position(ctx context.Context, peer string) (string, error)
	// SetPosition records a stream's announced start.
	SetPosition(ctx context.Context, peer, id string) error
	// ApplyBatch applies consecutive validated events (ids[j] the SSE id
	// of evs[j]) and the position of the last together, reporting for
	// each whether it was news.
	ApplyBatch(ctx context.Context, peer string, ids []string, evs []*feed.Event) ([]bool, error)
	// Synced records that the stream caught up at position id.
	Synced(ctx context.Context, peer, id string) error
	// Disconnected records that peer's stream ended.
	Disconnected(ctx context.Context, peer string)
	// Purge forgets every listing of peer and the position in its feed.
	Purge(ctx context.Context, peer string) error
}

// Follower subscribes to every active peer's federation feed, resumes with
// Last-Event-ID after any disconnect (exponential backoff with jitter), and
// applies events idempotently to the Index. A peer removed from the club
// stops being followed at once.
type Follower struct {
	Peers *peering.Store
	Keys  func() *parkkey.KeySet
	// Client follows the feeds: no overall timeout.
	Client *http.Client
	Index  Index
	Logger *slog.Logger
	// MaxBackoff caps the reconnect delay.
	MaxBackoff time.Duration
	// TokenTTL is the lifetime of the token a feed is followed with; the
	// peer ends the stream when it expires and the follower reconnects
	// with a fresh one (default parktoken.MaxFederationTTL).
	TokenTTL time.Duration
	// IdleTimeout drops a feed that sends nothing, not even a heartbeat,
	// for this long (a peer that hangs without closing the connection):
	// its part of the club index turns stale and the follower reconnects
	// (default DefaultIdleTimeout).
	IdleTimeout time.Duration

	mu      sync.Mutex
	running map[string]context.CancelFunc
	health  map[string]*peering.FeedHealth
	ctx     context.Context
	wg      sync.WaitGroup

	lag        *prometheus.GaugeVec
	reconnects *prometheus.CounterVec
	malformed  *prometheus.CounterVec
	applied    *prometheus.CounterVec
	resyncs    *prometheus.CounterVec
}

// New returns a follower registering its metrics in reg; the caller fills
// in Peers, Keys and Client.
func New(index Index, logger *slog.Logger, reg prometheus.Registerer) *Follower {
	f := &Follower{
		Index: index, Logger: logger, MaxBackoff: 10 * time.Second,
		running: map[string]context.CancelFunc{}, health: map[string]*peering.FeedHealth{},
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "parkmesh_feed_lag_seconds",
			Help: "Time between a peer's change and its arrival here, for the last event applied."}, []string{"peer"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parkmesh_feed_reconnects_total",
			Help: "Reconnections to a peer's feed."}, []string{"peer"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parkmesh_feed_malformed_events_total",
			Help: "Events from a peer's feed that were refused as malformed."}, []string{"peer"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parkmesh_feed_events_applied_total",
			Help: "Events from a peer's feed applied (new) or skipped (duplicate)."}, []string{"peer", "result"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parkmesh_feed_resyncs_total",
			Help: "Times a peer refused our feed position (its logs restored from a backup) and its listings were copied afresh."}, []string{"peer"}),
	}
	reg.MustRegister(f.lag, f.reconnects, f.malformed, f.applied, f.resyncs)
	return f
}

// Run follows peers until ctx ends; Sync must be called on peer changes.
func (f *Follower) Run(ctx context.Context) {
	f.mu.Lock()
	f.ctx = ctx
	f.mu.Unlock()
	f.Sync()
	<-ctx.Done()
	f.wg.Wait()
}

// Sync starts following new peers and stops following removed ones.
func (f *Follower) Sync() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx == nil {
		return
	}
	active := map[string]bool{}
	for _, p := range f.Peers.List() {
		active[p.ID] = true
		if _, ok := f.running[p.ID]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(f.ctx)
		f.running[p.ID] = cancel
		if f.health[p.ID] == nil {
			f.health[p.ID] = &peering.FeedHealth{}
		}
		f.wg.Add(1)
		go func(peer string) {
			defer f.wg.Done()
			f.follow(ctx, peer)
		}(p.ID)
	}
	for id, cancel := range f.running {
		if !active[id] {
			cancel()
			delete(f.running, id)
			delete(f.health, id)
			f.lag.DeleteLabelValues(id)
			f.Logger.Info("stopped following a removed peer", "peer", id)
		}
	}
}

// Health returns a copy of peer's feed health (nil when not followed).
func (f *Follower) Health(peer string) *peering.FeedHealth {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.health[peer]; ok {
		c := *h
		return &c
	}
	return nil
}

func (f *Follower) update(peer string, fn func(*peering.FeedHealth)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.health[peer]; ok {
		fn(h)
	}
}

func (f *Follower) follow(ctx context.Context, peer string) {
	pause := retry.New(200*time.Millisecond, f.MaxBackoff)
	for ctx.Err() == nil {
		delivered, err := f.stream(ctx, peer)
		f.update(peer, func(h *peering.FeedHealth) { h.Connected = false })
		f.Index.Disconnected(context.WithoutCancel(ctx), peer)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.update(peer, func(h *peering.FeedHealth) { h.LastError = err.Error() })
			f.Logger.Warn("peer feed disconnected", "peer", peer, "err", err)
		}
		if delivered || err == nil {
			pause.Reset()
		}
		if !retry.Sleep(ctx, pause.NextBackOff()) {
			return
		}
		f.reconnects.WithLabelValues(peer).Inc()
		f.update(peer, func(h *peering.FeedHealth) { h.Reconnects++ })
	}
}

// stream reads peer's feed from the stored position until it ends. It
// reports whether any event arrived.
func (f *Follower) stream(ctx context.Context, peer string) (bool, error) {
	p, ok := f.Peers.Get(peer)
	if !ok {
		return false, errors.New("no longer a peer")
	}
	last, err := f.Index.Position(ctx, peer)
	if err != nil {
		return false, err
	}
	ttl := f.TokenTTL
	if ttl <= 0 || ttl > parktoken.MaxFederationTTL {
		ttl = parktoken.MaxFederationTTL
	}
	tok, err := parktoken.IssueFederation(f.Keys(), peer, parktoken.ScopeChanges, ttl, time.Now())
	if err != nil {
		return false, err
	}
	u := strings.TrimRight(p.URL, "/") + "/federation/v1/changes"
	// Without a position the feed starts with the full current copy of
	// what the peer lets this park see (a new peering's backfill), then
	// goes on live.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	res, err := f.Client.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, f.refused(ctx, peer, res)
	}
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return false, errors.New("feed is not an event stream")
	}
	f.update(peer, func(h *peering.FeedHealth) { h.Connected, h.LastError = true, "" })
	delivered := false
	idle := f.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	body := &idleReader{r: res.Body, timer: time.AfterFunc(idle, cancel), idle: idle}
	defer body.timer.Stop()
	// The stream is read ahead of the index: events that arrive while a
	// batch is applied wait here, and the next batch takes them all.
	items := make(chan streamItem, MaxBatch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rd := sse.NewReader(body)
		for {
			ev, err := rd.Next()
			if err != nil && body.timedOut() {
				err = fmt.Errorf("peer sent nothing, not even a heartbeat, for %s", idle)
			}
			select {
			case items <- streamItem{ev: ev, err: err, read: true}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()
	for {
		var it streamItem
		select {
		case it = <-items:
		case <-ctx.Done():
			return delivered, ctx.Err()
		}
		// Listing events already read, up to MaxBatch, are applied in one
		// transaction; anything else is handled after them, in order.
		var batch []sse.Event
	gather:
		for isChange(it) {
			batch = append(batch, it.ev)
			if len(batch) == MaxBatch {
				it = streamItem{}
				break
			}
			select {
			case it = <-items:
			default:
				it = streamItem{}
				break gather
			}
		}
		if len(batch) > 0 {
			if err := f.handle(ctx, peer, batch); err != nil {
				return delivered, err
			}
			delivered = true
		}
		if it.err != nil {
			return delivered, it.err
		}
		switch it.ev.Type {
		case sse.ErrorType:
			return delivered, f.streamError(ctx, peer, it.ev.Data)
		case "position":
			// Where the stream starts: a reconnect before the first change
			// resumes from here.
			if it.ev.ID != "" {
				if err := f.Index.SetPosition(ctx, peer, it.ev.ID); err != nil {
					return delivered, err
				}
			}
		case feed.SyncedType:
			// Everything up to now has arrived: a full copy is complete,
			// and the peer's part is live from here on.
			if err := f.Index.Synced(ctx, peer, it.ev.ID); err != nil {
				return delivered, err
			}
		}
	}
}

// MaxBatch is how many events of a peer's feed, read and waiting, the
// follower applies in one transaction at most.
const MaxBatch = 200

// streamItem is one event read from a feed, or why the read ended.
type streamItem struct {
	ev   sse.Event
	err  error
	read bool // false for the zero item: nothing
}

// isChange reports whether it is a listing event (not a stream's control
// event, an error or its end); the zero item is none.
func isChange(it streamItem) bool {
	if !it.read || it.err != nil {
		return false
	}
	switch it.ev.Type {
	case sse.ErrorType, "position", feed.SyncedType:
		return false
	}
	return true
}

func (f *Follower) streamError(ctx context.Context, peer string, d []byte) error {
	var e sse.StreamError
	json.Unmarshal(d, &e)
	switch e.Code {
	case "token_expired":
		// Expected every token lifetime: reconnect with a fresh token at
		// once, from the position applied last.
		return nil
	case "invalid_last_event_id", "cannot_resume":
		// A peer of an older version refusing our position inside the
		// stream: as a 409 (refused).
		return f.resync(ctx, peer, e.Code)
	}
	return fmt.Errorf("peer ended the stream: %s: %s", e.Code, e.Message)
}

// refused handles a feed that did not open. A 409 means the peer does not
// know our position (it restored its logs from a backup): the peer's part
// is purged and copied afresh. Anything else is retried with backoff.
func (f *Follower) refused(ctx context.Context, peer string, res *http.Response) error {
	var body struct {
		Error apierror.Error `json:"error"`
	}
	json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&body)
	if res.StatusCode == http.StatusConflict {
		return f.resync(ctx, peer, string(body.Error.Code))
	}
	return fmt.Errorf("feed answered %d %s", res.StatusCode, body.Error.Code)
}

// resync purges peer's part of the index so that the next stream starts
// with a full copy: nothing stale stays, nothing is missed.
func (f *Follower) resync(ctx context.Context, peer, code string) error {
	f.Logger.Error("peer cannot resume our feed position; copying its listings afresh", "peer", peer, "code", code)
	f.resyncs.WithLabelValues(peer).Inc()
	if err := f.Index.Purge(ctx, peer); err != nil {
		return err
	}
	return fmt.Errorf("peer refused our position (%s); resyncing", code)
}

// handle validates and applies consecutive events in one transaction. A
// malformed event is logged and counted, and the stream goes on.
func (f *Follower) handle(ctx context.Context, peer string, batch []sse.Event) error {
	ids := make([]string, 0, len(batch))
	evs := make([]*feed.Event, 0, len(batch))
	for _, e := range batch {
		ev, _, _, err := feed.Parse(peer, e.Data)
		if err != nil || e.ID == "" {
			f.malformed.WithLabelValues(peer).Inc()
			f.update(peer, func(h *peering.FeedHealth) { h.Malformed++ })
			f.Logger.Warn("malformed event from peer feed", "peer", peer, "err", err, "id", e.ID)
			continue
		}
		ids, evs = append(ids, e.ID), append(evs, ev)
	}
	if len(evs) == 0 {
		return nil
	}
	fresh, err := f.Index.ApplyBatch(ctx, peer, ids, evs)
	if err != nil {
		return err
	}
	for _, news := range fresh {
		result := "duplicate"
		if news {
			result = "new"
		}
		f.applied.WithLabelValues(peer, result).Inc()
	}
	lag := time.Since(evs[len(evs)-1].Time())
	f.lag.WithLabelValues(peer).Set(lag.Seconds())
	f.update(peer, func(h *peering.FeedHealth) { h.LastEventAt, h.LagMS = time.Now().UTC(), lag.Milliseconds() })
	return nil
}

// idleReader reads a feed, cancelling it (through timer) when no byte
// arrives for idle: heartbeats count, so only a peer that hangs is cut.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
	fired atomic.Bool
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 && !i.timer.Reset(i.idle) {
		i.fired.Store(true) // fired before these bytes came
	}
	return n, err
}

// timedOut reports whether the feed was cut for idling.
func (i *idleReader) timedOut() bool {
	if !i.timer.Stop() {
		return true
	}
	return i.fired.Load()
}
