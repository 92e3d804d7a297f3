// Package clubindex is the gateway's club index: this park's own listings
// and every peer's listings this park may see, current state only, in one
// SQLite file searched with the services' own store code (one search
// implementation). It is fed by the park's own change logs and by each
// peer's changes feed, applied idempotently by (park, id, version);
// withdrawn deletes, and a deleted peering purges the peer's listings.
// Each origin's listings keep that origin's own sequence numbers, so the
// park-side stream read from the index has positions every replica
// understands. It also knows how fresh each park's part is: live, stale
// (with as_of) or syncing.
package clubindex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/retry"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// FileName is the index's file in the gateway's data directory.
const FileName = "club-index.db"

// Meta keys, each followed by a park id.
const (
	keyPosition = "feed/"   // the SSE id of the last event applied from the park
	keySynced   = "synced/" // when the park's part was last known complete (RFC 3339)
)

// The freshness of one park's part of the index: live (its feed is
// connected and caught up), stale (disconnected: the listings are the last
// known), syncing (its initial copy is not complete).
const (
	Live    = search.StatusLive
	Stale   = search.StatusStale
	Syncing = search.StatusSyncing
)

// Freshness is how fresh one park's part of the index is.
type Freshness struct {
	Park   string
	Status string
	// AsOf is when the part was last known complete (zero while syncing).
	AsOf time.Time
	// LagMS is the delay of the last event applied from the park.
	LagMS int64
}

// Index is the club index.
type Index struct {
	park   string
	logger *slog.Logger
	store  *sqlitestore.Store

	mu    sync.Mutex
	heads map[string]feed.Position // per origin park, the newest sequence held per kind
	links map[string]*link         // per peer being followed
	ready chan struct{}            // closed once the park's own listings are caught up
	once  sync.Once
	local *feed.Local // the park's own feed, once FollowLocal runs

	applied *prometheus.CounterVec
	purged  prometheus.Counter
	parkGau *prometheus.GaugeVec
}

// link is what the index knows of a peer's feed connection.
type link struct {
	live   bool      // connected and caught up in this connection
	asOf   time.Time // last moment known complete
	lagMS  int64
	copied bool // a full copy completed once
}

// Open opens the index in dataDir for park. The index is a cache of the
// feeds: missing or empty, it is created and filled again from them;
// damaged, it is refused (a *sqlitefile.StartError saying to move it
// away), never served.
func Open(ctx context.Context, dataDir, park string, logger *slog.Logger, reg prometheus.Registerer) (*Index, error) {
	st, err := sqlitestore.Open(ctx, filepath.Join(dataDir, FileName), sqlitestore.Rebuildable("club index"),
		sqlitestore.WithLogger(logger), sqlitestore.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("club index: %w", err)
	}
	x := &Index{
		park: park, logger: logger, store: st,
		heads: map[string]feed.Position{}, links: map[string]*link{}, ready: make(chan struct{}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parkmesh_club_index_applied_total",
			Help: "Changes applied to the club index (new) or skipped as already held (duplicate), by origin park."}, []string{"park", "result"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{Name: "parkmesh_club_index_purged_total",
			Help: "Listings purged from the club index because their park stopped being a peer or resynced."}),
		parkGau: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "parkmesh_club_index_park_status",
			Help: "1 for the current freshness of each park's part of the club index."}, []string{"park", "status"}),
	}
	if reg != nil {
		reg.MustRegister(x.applied, x.purged, x.parkGau)
	}
	if err := x.load(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return x, nil
}

// Healthy reports whether the index's file can serve: Unavailable, with
// the reason, while an I/O error or damage seen since its last check
// stands.
func (x *Index) Healthy(ctx context.Context) error { return x.store.Ping(ctx) }

// load reads the heads and the peers' last known completeness.
func (x *Index) load(ctx context.Context) error {
	positions, err := x.store.MetaPrefix(ctx, keyPosition)
	if err != nil {
		return fmt.Errorf("club index: %w", err)
	}
	synced, err := x.store.MetaPrefix(ctx, keySynced)
	if err != nil {
		return fmt.Errorf("club index: %w", err)
	}
	parks := map[string]bool{x.park: true}
	for key := range positions {
		parks[strings.TrimPrefix(key, keyPosition)] = true
	}
	for park := range parks {
		var h feed.Position
		for i, k := range listing.Kinds {
			if h[i], err = x.store.HeadOf(ctx, park, k); err != nil {
				return fmt.Errorf("club index: %w", err)
			}
		}
		x.heads[park] = h
	}
	for key, at := range synced {
		park := strings.TrimPrefix(key, keySynced)
		t, _ := time.Parse(time.RFC3339Nano, at)
		x.links[park] = &link{asOf: t, copied: true}
	}
	return nil
}

// Close closes the index's file.
func (x *Index) Close() error { return x.store.Close() }

// Park is this park's id.
func (x *Index) Park() string { return x.park }

// Signal returns a channel closed at the next change of the index.
func (x *Index) Signal() <-chan struct{} { return x.store.ChangeSignal() }

// Ready is closed once the park's own listings have been read to the end
// of its change logs once.
func (x *Index) Ready() <-chan struct{} { return x.ready }

// WaitReady waits until Ready, ctx ends or max passes.
func (x *Index) WaitReady(ctx context.Context, max time.Duration) error {
	return feed.WaitReady(ctx, x.ready, max)
}

// apply puts or removes one change of park in b, reporting whether the
// index held an older version.
func apply(b *sqlitestore.Batch, park string, k listing.Kind, c listing.Change) (bool, error) {
	if c.Op == listing.OpDeleted || c.Listing == nil {
		return b.Remove(park, k, c.ListingID, c.Version, c.Seq, c.At)
	}
	return b.Put(c.Listing, c.Seq)
}

func (x *Index) count(park string, fresh bool) {
	result := "duplicate"
	if fresh {
		result = "new"
	}
	x.applied.WithLabelValues(park, result).Inc()
}

// advance records that park's part now holds kind index i up to seq.
func (x *Index) advance(park string, i int, seq int64) {
	x.mu.Lock()
	h := x.heads[park]
	if seq > h[i] {
		h[i] = seq
	}
	x.heads[park] = h
	x.mu.Unlock()
}

// FollowLocal keeps the park's own listings in the index from the local
// feed (all of them, as the park's staff see them) until ctx ends.
func (x *Index) FollowLocal(ctx context.Context, local *feed.Local) {
	x.mu.Lock()
	x.local = local
	x.mu.Unlock()
	pause := retry.New(100*time.Millisecond, 5*time.Second)
	failing := false
	// The position applied is read from the index once, then kept here:
	// this loop is the only writer of the park's own position, in the
	// transaction that applies the batch. After an error it is read again.
	var pos feed.Position
	known := false
	for ctx.Err() == nil {
		sig := local.Signal()
		var n int
		var err error
		if !known {
			pos, err = x.localPosition(ctx)
			known = err == nil
		}
		if err == nil {
			pos, n, err = x.localBatch(ctx, local, pos)
		}
		if err != nil {
			known = false
			if ctx.Err() != nil {
				return
			}
			if !failing {
				x.logger.Warn("club index cannot read the park's own changes", "err", err)
				failing = true
			}
			if !retry.Sleep(ctx, pause.NextBackOff()) {
				return
			}
			continue
		}
		if failing {
			x.logger.Info("club index reads the park's own changes again")
			failing = false
		}
		pause.Reset()
		if n > 0 {
			continue
		}
		// Caught up with what the feed has read; once the feed has read the
		// logs to their end, so has the index.
		ready := local.Ready()
		select {
		case <-ready:
			x.once.Do(func() { close(x.ready) })
			ready = nil // closed: waiting on it below would never block
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-sig:
		case <-ready:
		}
	}
}

// localPosition is the position of the park's own changes the index
// holds.
func (x *Index) localPosition(ctx context.Context) (feed.Position, error) {
	raw, _, err := x.store.Meta(ctx, keyPosition+x.park)
	if err != nil || raw == "" {
		return feed.Position{}, err
	}
	pos, err := feed.ParsePosition(raw)
	if err != nil {
		return pos, fmt.Errorf("stored position %q: %w", raw, err)
	}
	return pos, nil
}

// localBatch applies the next batch of the park's own changes after pos
// and returns the position after it.
func (x *Index) localBatch(ctx context.Context, local *feed.Local, pos feed.Position) (feed.Position, int, error) {
	batch, err := local.Next(ctx, pos, 500)
	if err != nil || len(batch) == 0 {
		return pos, 0, err
	}
	fresh := make([]bool, len(batch))
	err = x.store.Batch(ctx, func(b *sqlitestore.Batch) error {
		for j, pc := range batch {
			if fresh[j], err = apply(b, x.park, pc.Kind, pc.Change); err != nil {
				return err
			}
		}
		return b.SetMeta(keyPosition+x.park, batch[len(batch)-1].After.String())
	})
	if err != nil {
		return pos, 0, err
	}
	for j, pc := range batch {
		x.count(x.park, fresh[j])
		x.advance(x.park, feed.KindIndex(pc.Kind), pc.Change.Seq)
	}
	return batch[len(batch)-1].After, len(batch), nil
}

// Position is the SSE id of the last event applied from peer ("" when
// none: its feed is to be read from the start, a full copy).
func (x *Index) Position(ctx context.Context, peer string) (string, error) {
	raw, _, err := x.store.Meta(ctx, keyPosition+peer)
	return raw, err
}

// SetPosition records where the index stands in peer's feed without an
// event (a stream's announced start).
func (x *Index) SetPosition(ctx context.Context, peer, id string) error {
	if _, err := feed.ParsePosition(id); err != nil {
		return fmt.Errorf("peer %s sent position %q: %w", peer, id, err)
	}
	if err := x.store.Batch(ctx, func(b *sqlitestore.Batch) error { return b.SetMeta(keyPosition+peer, id) }); err != nil {
		return err
	}
	x.mu.Lock()
	if _, ok := x.heads[peer]; !ok {
		x.heads[peer] = feed.Position{}
	}
	x.mu.Unlock()
	return nil
}

// Apply applies one event of peer's feed (already validated by feed.Parse)
// with SSE id id, and records the position in the same transaction: a
// crash never loses nor doubles an event. It reports whether the event was
// news (a newer version than the index held).
func (x *Index) Apply(ctx context.Context, peer, id string, ev *feed.Event) (bool, error) {
	fresh, err := x.ApplyBatch(ctx, peer, []string{id}, []*feed.Event{ev})
	if err != nil {
		return false, err
	}
	return fresh[0], nil
}

// ApplyBatch applies consecutive events of peer's feed (already validated
// by feed.Parse; ids[j] is the SSE id of evs[j]) in one transaction, with
// the position of the last: all of them and the position commit together
// or not at all, so a crash never loses nor doubles an event, and an event
// the index holds a version of already changes nothing (idempotent by
// version). It reports, per event, whether it was news. One transaction
// per event was what a copy cost most (docs/benchmarks.md).
func (x *Index) ApplyBatch(ctx context.Context, peer string, ids []string, evs []*feed.Event) ([]bool, error) {
	if len(ids) != len(evs) || len(evs) == 0 {
		return nil, fmt.Errorf("club index: %d ids for %d events", len(ids), len(evs))
	}
	type item struct {
		c listing.Change
		k listing.Kind
		i int
	}
	items := make([]item, len(evs))
	for j, ev := range evs {
		pos, err := feed.ParsePosition(ids[j])
		if err != nil {
			return nil, fmt.Errorf("peer %s sent event id %q: %w", peer, ids[j], err)
		}
		it := &items[j]
		switch ev.Type() {
		case feed.TypeWithdrawn:
			w, err := feed.WithdrawnOf(ev)
			if err != nil {
				return nil, err
			}
			it.k = w.Kind
			it.c = listing.Change{Op: listing.OpDeleted, ListingID: w.ID, Version: w.Version, At: ev.Time()}
		default:
			l, err := feed.ListingOf(ev)
			if err != nil {
				return nil, err
			}
			it.k = l.Kind
			it.c = listing.Change{Op: listing.OpUpdated, ListingID: l.ID, Version: l.Version, At: ev.Time(), Listing: l}
		}
		if it.i = feed.KindIndex(it.k); it.i < 0 {
			return nil, fmt.Errorf("peer %s sent an event of kind %q", peer, it.k)
		}
		it.c.Seq = pos[it.i]
	}
	fresh := make([]bool, len(evs))
	err := x.store.Batch(ctx, func(b *sqlitestore.Batch) error {
		for j, it := range items {
			if it.c.Op == listing.OpDeleted {
				// A withdrawal of a listing the index does not hold (never
				// copied, or already withdrawn: a peer tells every park
				// that could ever see it) changes nothing here and is not
				// news to the park's staff.
				held, err := b.Holds(peer, it.c.ListingID)
				if err != nil {
					return err
				}
				if !held {
					continue
				}
			}
			var err error
			if fresh[j], err = apply(b, peer, it.k, it.c); err != nil {
				return err
			}
		}
		return b.SetMeta(keyPosition+peer, ids[len(ids)-1])
	})
	if err != nil {
		return nil, err
	}
	for j, it := range items {
		x.count(peer, fresh[j])
		x.advance(peer, it.i, it.c.Seq)
	}
	lag := time.Since(evs[len(evs)-1].Time()).Milliseconds()
	x.mu.Lock()
	l := x.linkOf(peer)
	l.lagMS = lag
	if l.live {
		l.asOf = time.Now()
	}
	x.mu.Unlock()
	return fresh, nil
}

// linkOf returns peer's link, creating it. Must be called with x.mu held.
func (x *Index) linkOf(peer string) *link {
	l := x.links[peer]
	if l == nil {
		l = &link{}
		x.links[peer] = l
	}
	return l
}

// Synced records that peer's stream has delivered everything up to its
// position id: the peer's part is complete (a first full copy is done)
// and live from now on.
func (x *Index) Synced(ctx context.Context, peer, id string) error {
	if err := x.SetPosition(ctx, peer, id); err != nil {
		return err
	}
	now := time.Now()
	if err := x.store.Batch(ctx, func(b *sqlitestore.Batch) error {
		return b.SetMeta(keySynced+peer, now.UTC().Format(time.RFC3339Nano))
	}); err != nil {
		return err
	}
	x.mu.Lock()
	l := x.linkOf(peer)
	l.live, l.copied, l.asOf = true, true, now
	x.mu.Unlock()
	x.publish(peer)
	return nil
}

// Disconnected records that peer's stream ended: its part is stale from
// now on, as of the last moment it was known complete, which is kept for
// after a restart.
func (x *Index) Disconnected(ctx context.Context, peer string) {
	x.mu.Lock()
	l := x.linkOf(peer)
	was, asOf := l.live, l.asOf
	l.live = false
	x.mu.Unlock()
	if was {
		err := x.store.Batch(ctx, func(b *sqlitestore.Batch) error {
			return b.SetMeta(keySynced+peer, asOf.UTC().Format(time.RFC3339Nano))
		})
		if err != nil && ctx.Err() == nil {
			x.logger.Warn("club index cannot record a peer's freshness", "peer", peer, "err", err)
		}
	}
	x.publish(peer)
}

// Purge deletes every listing of peer and forgets where the index stood in
// its feed: for a peering deleted, or a peer whose feed cannot resume
// (restored from a backup), which is then copied afresh.
func (x *Index) Purge(ctx context.Context, peer string) error {
	if peer == x.park {
		return errors.New("club index: the park's own listings are not purged")
	}
	var n int64
	err := x.store.Batch(ctx, func(b *sqlitestore.Batch) error {
		var err error
		if n, err = b.Purge(peer); err != nil {
			return err
		}
		if err := b.DeleteMeta(keyPosition + peer); err != nil {
			return err
		}
		return b.DeleteMeta(keySynced + peer)
	})
	if err != nil {
		return err
	}
	x.mu.Lock()
	delete(x.heads, peer)
	delete(x.links, peer)
	x.mu.Unlock()
	x.purged.Add(float64(n))
	x.parkGau.DeletePartialMatch(prometheus.Labels{"park": peer})
	x.logger.Info("purged a park's listings from the club index", "park", peer, "listings", n)
	return nil
}

// SyncPeers purges the parts of parks that are no longer peers. The
// composition root calls it on every change of the peer set (which is read
// from Consul, confirmed, never a guess).
func (x *Index) SyncPeers(ctx context.Context, active []string) {
	keep := map[string]bool{x.park: true}
	for _, p := range active {
		keep[p] = true
	}
	x.mu.Lock()
	var gone []string
	for park := range x.heads {
		if !keep[park] {
			gone = append(gone, park)
		}
	}
	for park := range x.links {
		if !keep[park] {
			if _, ok := x.heads[park]; !ok {
				gone = append(gone, park)
			}
		}
	}
	x.mu.Unlock()
	for _, park := range gone {
		if err := x.Purge(ctx, park); err != nil {
			x.logger.Error("cannot purge a removed peer from the club index", "park", park, "err", err)
		}
	}
}

// Freshness is how fresh park's part of the index is.
func (x *Index) Freshness(park string) Freshness {
	x.mu.Lock()
	defer x.mu.Unlock()
	f := Freshness{Park: park, Status: Syncing}
	if park == x.park {
		select {
		case <-x.ready:
			f.Status, f.AsOf = Live, time.Now().UTC()
		default:
		}
		return f
	}
	l := x.links[park]
	switch {
	case l == nil || !l.copied:
	case l.live:
		f.Status, f.AsOf, f.LagMS = Live, time.Now().UTC(), l.lagMS
	default:
		f.Status, f.AsOf, f.LagMS = Stale, l.asOf.UTC(), l.lagMS
	}
	return f
}

// publish sets the status gauge of park.
func (x *Index) publish(park string) {
	f := x.Freshness(park)
	for _, s := range []string{Live, Stale, Syncing} {
		v := 0.0
		if s == f.Status {
			v = 1
		}
		x.parkGau.WithLabelValues(park, s).Set(v)
	}
}

// Search runs q on the index: one query, one ranking across every park
// and kind the index holds.
func (x *Index) Search(ctx context.Context, q listing.Query) (*listing.Page, error) {
	return x.store.Search(ctx, q)
}

// Get returns park's listing id as the index holds it (NotFound when it
// holds none).
func (x *Index) Get(ctx context.Context, park, id string) (*listing.Listing, error) {
	return x.store.GetOf(ctx, park, id)
}

// Head is the newest position the index holds of every park.
func (x *Index) Head() feed.ClubPosition {
	x.mu.Lock()
	defer x.mu.Unlock()
	return feed.NewClubPosition(x.heads)
}

// Stream is the park-side stream read from the index: the park's own
// changes and its peers', each listing once in its current state, as
// CloudEvents like the federation feed's. It implements
// feed.Source[feed.ClubPosition]. From is where the stream started (see
// feed.PeerView.From: created or updated is a hint).
type Stream struct {
	Index *Index
	From  feed.ClubPosition
	Sent  *feed.Sent // feed.NewSent(), or nil
}

// Signals implements feed.Source.
func (s Stream) Signals() []<-chan struct{} { return []<-chan struct{}{s.Index.Signal()} }

// Head implements feed.Source.
func (s Stream) Head(context.Context) feed.ClubPosition { return s.Index.Head() }

// Next implements feed.Source: the changes after pos of every park the
// index holds, in time order, at most about limit. A park no longer held
// (a removed peer) leaves the position.
func (s Stream) Next(ctx context.Context, pos feed.ClubPosition, limit int) ([]feed.Item[feed.ClubPosition], feed.ClubPosition, error) {
	head := s.Index.Head()
	type queue struct {
		park string
		kind listing.Kind
		cs   []listing.Change
	}
	var queues []*queue
	for _, park := range head.Parks() {
		h, p := head.Of(park), pos.Of(park)
		for i, k := range listing.Kinds {
			if h[i] <= p[i] {
				continue
			}
			cs, err := s.Index.store.ChangesOf(ctx, park, k, p[i], limit)
			if err != nil {
				return nil, pos, err
			}
			if len(cs) > 0 {
				queues = append(queues, &queue{park, k, cs})
			}
		}
	}
	parks := map[string]feed.Position{}
	for _, park := range head.Parks() {
		parks[park] = pos.Of(park)
	}
	// Time order across parks and kinds, each origin log's own order kept.
	var out []feed.Item[feed.ClubPosition]
	for n := 0; n < limit; n++ {
		var best *queue
		for _, q := range queues {
			if len(q.cs) > 0 && (best == nil || q.cs[0].At.Before(best.cs[0].At)) {
				best = q
			}
		}
		if best == nil {
			break
		}
		c := best.cs[0]
		best.cs = best.cs[1:]
		p := parks[best.park]
		i := feed.KindIndex(best.kind)
		ev := feed.For(best.park, best.kind, c, "", s.Sent.After(best.park, c.ListingID, c.FirstSeq, s.From.Of(best.park)[i]))
		p[i] = c.Seq
		parks[best.park] = p
		if ev != nil {
			out = append(out, feed.Item[feed.ClubPosition]{Park: best.park, Event: ev, After: feed.NewClubPosition(parks)})
		}
	}
	return out, feed.NewClubPosition(parks), nil
}

// Resume is where a park-side reader with SSE id last ("" for none)
// starts: after last, or at the position of the moment asked. It first
// waits (up to feed.ReadyWait) until the park's own listings are caught
// up, so a position this park issued is never mistaken for one from the
// future (Unavailable when that takes too long). A position ahead of the
// park's own logs, or in a range of them a restore skipped (feed.Gap), is
// a Conflict: the reader starts again without one. A peer's part ahead of
// what the index holds of it (that peer was copied afresh) is read again
// from its start.
func (x *Index) Resume(ctx context.Context, last string, asked time.Time) (feed.ClubPosition, error) {
	notReady := apierror.New(apierror.Unavailable, "this gateway is still reading the park's change logs; retry shortly with the same position")
	if err := x.WaitReady(ctx, feed.ReadyWait); err != nil {
		return feed.ClubPosition{}, notReady
	}
	head := x.Head()
	if last == "" {
		// "Now" is when the reader asked, not when the index was ready:
		// the park's own changes in between are the reader's too. (The
		// services answer where their logs stood at that moment.)
		x.mu.Lock()
		local := x.local
		x.mu.Unlock()
		own, err := local.PositionAt(ctx, asked)
		if err != nil {
			return feed.ClubPosition{}, notReady
		}
		h := head.Of(x.park)
		for i := range own {
			own[i] = min(own[i], h[i])
		}
		return head.With(x.park, own), nil
	}
	pos, err := feed.ParseClubPosition(last)
	if err != nil {
		return pos, err
	}
	x.mu.Lock()
	local := x.local
	x.mu.Unlock()
	// A part in a range a restore skipped is not "ahead" once the logs
	// have gone past it, but it was read from a history the restore undid.
	if local != nil && local.Void(pos.Of(x.park)) {
		return pos, &apierror.Error{Code: apierror.Conflict, Field: "Last-Event-ID",
			Message: "this position is not one of the park's change logs as they are now (they were restored from a backup); reconnect without Last-Event-ID and search with updated_since to catch up"}
	}
	for _, park := range pos.AheadOf(head) {
		if park == x.park {
			return pos, &apierror.Error{Code: apierror.Conflict, Field: "Last-Event-ID",
				Message: "this position is ahead of the park's change logs (they were restored from a backup); reconnect without Last-Event-ID and search with updated_since to catch up"}
		}
		pos = pos.With(park, feed.Position{})
	}
	return pos, nil
}
