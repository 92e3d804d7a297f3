package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Follower subscribes to every active peer's federation feed, resumes with
// Last-Event-ID after any disconnect (exponential backoff with jitter), and
// applies events idempotently to the Inbox. A peer removed from the club
// stops being followed at once.
type Follower struct {
	Fed    *Federation
	Inbox  *Inbox
	Logger *slog.Logger
	// MaxBackoff caps the reconnect delay.
	MaxBackoff time.Duration

	mu      sync.Mutex
	running map[string]context.CancelFunc
	health  map[string]*feedHealth
	ctx     context.Context
	wg      sync.WaitGroup

	lag        *prometheus.GaugeVec
	reconnects *prometheus.CounterVec
	malformed  *prometheus.CounterVec
	applied    *prometheus.CounterVec
}

// feedHealth is what /api/v1/peers shows of a peer's feed.
type feedHealth struct {
	Connected   bool      `json:"connected"`
	LastEventAt time.Time `json:"last_event_at,omitzero"`
	LagMS       int64     `json:"lag_ms"`
	Reconnects  int       `json:"reconnects"`
	Malformed   int       `json:"malformed_events"`
	LastError   string    `json:"last_error,omitempty"`
}

// NewFollower returns a follower registering its metrics in reg.
func NewFollower(fed *Federation, inbox *Inbox, logger *slog.Logger, reg prometheus.Registerer) *Follower {
	f := &Follower{
		Fed: fed, Inbox: inbox, Logger: logger, MaxBackoff: 10 * time.Second,
		running: map[string]context.CancelFunc{}, health: map[string]*feedHealth{},
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "parkmesh_feed_lag_seconds",
			Help: "Time between a peer's change and its arrival here, for the last event applied."}, []string{"peer"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parkmesh_feed_reconnects_total",
			Help: "Reconnections to a peer's feed."}, []string{"peer"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parkmesh_feed_malformed_events_total",
			Help: "Events from a peer's feed that were refused as malformed."}, []string{"peer"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parkmesh_feed_events_applied_total",
			Help: "Events from a peer's feed applied (new) or skipped (duplicate)."}, []string{"peer", "result"}),
	}
	reg.MustRegister(f.lag, f.reconnects, f.malformed, f.applied)
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
	for _, p := range f.Fed.Peers.List() {
		active[p.ID] = true
		if _, ok := f.running[p.ID]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(f.ctx)
		f.running[p.ID] = cancel
		if f.health[p.ID] == nil {
			f.health[p.ID] = &feedHealth{}
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

// Health returns a copy of peer's feed health.
func (f *Follower) Health(peer string) *feedHealth {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.health[peer]; ok {
		c := *h
		return &c
	}
	return nil
}

func (f *Follower) update(peer string, fn func(*feedHealth)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.health[peer]; ok {
		fn(h)
	}
}

func (f *Follower) follow(ctx context.Context, peer string) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		delivered, err := f.stream(ctx, peer)
		f.update(peer, func(h *feedHealth) { h.Connected = false })
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.update(peer, func(h *feedHealth) { h.LastError = err.Error() })
			f.Logger.Warn("peer feed disconnected", "peer", peer, "err", err)
		}
		if delivered {
			backoff = 200 * time.Millisecond
		}
		// Full jitter: a random wait up to the backoff, so many gateways
		// do not reconnect in step.
		wait := time.Duration(rand.Int64N(int64(backoff))) + 50*time.Millisecond
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, f.MaxBackoff)
		f.reconnects.WithLabelValues(peer).Inc()
		f.update(peer, func(h *feedHealth) { h.Reconnects++ })
	}
}

// stream reads peer's feed from the stored position until it ends. It
// reports whether any event arrived.
func (f *Follower) stream(ctx context.Context, peer string) (bool, error) {
	p, ok := f.Fed.Peers.Get(peer)
	if !ok {
		return false, errors.New("no longer a peer")
	}
	last, err := f.Inbox.Position(ctx, peer)
	if err != nil {
		return false, err
	}
	tok, err := parktoken.IssueFederation(f.Fed.Keys(), peer, parktoken.ScopeChanges, parktoken.MaxFederationTTL, time.Now())
	if err != nil {
		return false, err
	}
	u := strings.TrimRight(p.URL, "/") + "/federation/v1/changes"
	if last == "" {
		// A new peering follows what happened since it was made (a minute
		// earlier, for clock skew between parks); the past before it is
		// one club search away. Once following, nothing is missed.
		u += "?since=" + url.QueryEscape(p.EstablishedAt.Add(-time.Minute).UTC().Format(time.RFC3339Nano))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	res, err := f.Fed.StreamClient.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("feed answered %d", res.StatusCode)
	}
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return false, errors.New("feed is not an event stream")
	}
	f.update(peer, func(h *feedHealth) { h.Connected, h.LastError = true, "" })
	delivered := false
	rd := bufio.NewReaderSize(res.Body, 64<<10)
	var id, typ string
	var data bytes.Buffer
	for {
		line, err := readLine(rd)
		if err != nil {
			return delivered, err
		}
		switch {
		case line == "":
			if data.Len() > 0 || typ != "" {
				d := bytes.TrimSuffix(data.Bytes(), []byte("\n"))
				if typ == "error" {
					return delivered, f.streamError(ctx, peer, d)
				}
				if typ == "position" {
					if id != "" {
						if err := f.Inbox.SetPosition(ctx, peer, id); err != nil {
							return delivered, err
						}
					}
					id, typ = "", ""
					data.Reset()
					continue
				}
				if err := f.handle(ctx, peer, id, d); err != nil {
					return delivered, err
				}
				delivered = true
			}
			id, typ = "", ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
			// comment (heartbeat)
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			data.WriteByte('\n')
			if data.Len() > 2<<20 {
				return delivered, errors.New("event larger than 2 MiB")
			}
		}
	}
}

// readLine reads one line, refusing lines over 2 MiB.
func readLine(rd *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := rd.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > 2<<20 {
			return "", errors.New("line larger than 2 MiB")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

func (f *Follower) streamError(ctx context.Context, peer string, d []byte) error {
	var e StreamError
	json.Unmarshal(d, &e)
	switch e.Code {
	case "invalid_last_event_id", "cannot_resume":
		// Our position is useless there (the peer restored its change log
		// from a backup?): follow from now on and say so loudly; what
		// happened in between is one club search away.
		f.Logger.Error("peer cannot resume our feed position; following it from now on", "peer", peer, "code", e.Code)
		if err := f.Inbox.ResetPosition(ctx, peer); err != nil {
			return err
		}
	}
	return fmt.Errorf("peer ended the stream: %s: %s", e.Code, e.Message)
}

// handle validates and applies one event. A malformed event is logged and
// counted, and the stream goes on.
func (f *Follower) handle(ctx context.Context, peer, id string, data []byte) error {
	ev, listingID, version, err := validEvent(peer, data)
	if err != nil || id == "" {
		f.malformed.WithLabelValues(peer).Inc()
		f.update(peer, func(h *feedHealth) { h.Malformed++ })
		f.Logger.Warn("malformed event from peer feed", "peer", peer, "err", err, "id", id)
		return nil
	}
	fresh, err := f.Inbox.Apply(ctx, peer, id, listingID, version, data)
	if err != nil {
		return err
	}
	result := "duplicate"
	if fresh {
		result = "new"
	}
	f.applied.WithLabelValues(peer, result).Inc()
	lag := time.Since(ev.Time)
	f.lag.WithLabelValues(peer).Set(lag.Seconds())
	f.update(peer, func(h *feedHealth) { h.LastEventAt, h.LagMS = time.Now().UTC(), lag.Milliseconds() })
	return nil
}

// validEvent checks a peer's event: CloudEvents 1.0, from that peer, of a
// known type, carrying a well-formed listing of that peer.
func validEvent(peer string, data []byte) (*CloudEvent, string, int64, error) {
	var ev CloudEvent
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, "", 0, fmt.Errorf("not a CloudEvent: %w", err)
	}
	if ev.SpecVersion != "1.0" || ev.Source != "/parks/"+peer || ev.ID == "" || ev.Subject == "" {
		return nil, "", 0, errors.New("specversion, source, id or subject wrong")
	}
	switch ev.Type {
	case TypeCreated, TypeUpdated:
		var l listing.Listing
		if err := json.Unmarshal(ev.Data, &l); err != nil {
			return nil, "", 0, errors.New("data is not a listing")
		}
		if l.Park != peer || l.ID != ev.Subject || !listing.ValidID(l.Kind, l.ID) || l.Version < 1 || l.Validate(l.Kind) != nil {
			return nil, "", 0, errors.New("data is not a valid listing of the peer")
		}
		return &ev, l.ID, l.Version, nil
	case TypeWithdrawn:
		var w withdrawnData
		if err := json.Unmarshal(ev.Data, &w); err != nil || w.Park != peer || w.ID != ev.Subject || !listing.ValidID(w.Kind, w.ID) || w.Version < 1 {
			return nil, "", 0, errors.New("withdrawn data malformed")
		}
		return &ev, w.ID, w.Version, nil
	}
	return nil, "", 0, fmt.Errorf("unknown type %q", ev.Type)
}
