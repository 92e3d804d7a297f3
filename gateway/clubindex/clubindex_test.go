package clubindex

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

const (
	home  = "xian-hitech"
	peerA = "haifa-park"
	peerB = "tlv-park"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func open(t *testing.T, dir string) *Index {
	t.Helper()
	x, err := Open(t.Context(), dir, home, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func project(park, title string, version int64) *listing.Listing {
	return &listing.Listing{
		ID: listing.NewID(listing.KindProject, t0), Park: park, Kind: listing.KindProject,
		Title: title, Sectors: []string{"new-materials"}, Country: "CN", Visibility: listing.Club,
		Version: version, CreatedAt: t0, UpdatedAt: t0, Attrs: listing.Attrs{Stage: "pilot"},
	}
}

// peerEvent is what peer's feed sends for change c, and its SSE id.
func peerEvent(t *testing.T, peer string, c listing.Change, pos feed.Position) (string, *feed.Event) {
	t.Helper()
	ev := feed.For(peer, c.Kind, c, home, 0)
	if ev == nil {
		t.Fatal("no event")
	}
	parsed, _, _, err := feed.Parse(peer, feed.Marshal(ev))
	if err != nil {
		t.Fatal(err)
	}
	return pos.String(), parsed
}

func change(l *listing.Listing, seq int64) listing.Change {
	return listing.Change{Seq: seq, FirstSeq: seq, Op: listing.OpUpdated, Park: l.Park, Kind: l.Kind, ListingID: l.ID,
		Version: l.Version, At: t0, Listing: l, Audience: listing.Audience{Club: true}}
}

func tombstone(l *listing.Listing, seq int64) listing.Change {
	return listing.Change{Seq: seq, Op: listing.OpDeleted, Park: l.Park, Kind: l.Kind, ListingID: l.ID,
		Version: l.Version + 1, At: t0, Audience: listing.Audience{Club: true}}
}

func titles(t *testing.T, x *Index, q listing.Query) []string {
	t.Helper()
	page, err := x.Search(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range page.Results {
		out = append(out, l.Park+":"+l.Title)
	}
	slices.Sort(out)
	return out
}

// Peer events apply idempotently by (park, id, version), the position
// moving with them; withdrawn deletes; a late older version is refused.
func TestApplyIsIdempotentByVersion(t *testing.T) {
	dir := t.TempDir()
	x := open(t, dir)
	ctx := t.Context()
	v1 := project(peerA, "copper v1", 1)
	v2 := *v1
	v2.Title, v2.Version = "copper v2", 2
	steps := []struct {
		name      string
		c         listing.Change
		pos       feed.Position
		wantFresh bool
		want      []string
	}{
		{"first version", change(v1, 3), feed.Position{0, 3, 0}, true, []string{peerA + ":copper v1"}},
		{"the same again", change(v1, 3), feed.Position{0, 3, 0}, false, []string{peerA + ":copper v1"}},
		{"newer", change(&v2, 5), feed.Position{0, 5, 0}, true, []string{peerA + ":copper v2"}},
		{"older arriving late", change(v1, 3), feed.Position{0, 5, 0}, false, []string{peerA + ":copper v2"}},
		{"withdrawn", tombstone(&v2, 6), feed.Position{0, 6, 0}, true, nil},
		{"older after withdrawn", change(&v2, 5), feed.Position{0, 6, 0}, false, nil},
	}
	for _, s := range steps {
		id, ev := peerEvent(t, peerA, s.c, s.pos)
		fresh, err := x.Apply(ctx, peerA, id, ev)
		if err != nil || fresh != s.wantFresh {
			t.Errorf("%s: Apply = %v, %v; want %v", s.name, fresh, err, s.wantFresh)
		}
		if got := titles(t, x, listing.Query{}); !slices.Equal(got, s.want) {
			t.Errorf("%s: index holds %v, want %v", s.name, got, s.want)
		}
		if pos, err := x.Position(ctx, peerA); err != nil || pos != s.pos.String() {
			t.Errorf("%s: position %q, %v; want %s", s.name, pos, err, s.pos)
		}
	}
	// Durable: a reopened index knows the position and the head.
	x.Close()
	x = open(t, dir)
	if pos, _ := x.Position(ctx, peerA); pos != "v1.0.6.0" {
		t.Errorf("position after reopen %q", pos)
	}
	if h := x.Head().Of(peerA); h != (feed.Position{0, 6, 0}) {
		t.Errorf("head after reopen %v", h)
	}
}

// A peer is syncing until its first copy completes, live while its feed
// is connected and caught up, stale (as of when it was last live, kept
// across a restart) when the feed is lost.
func TestFreshness(t *testing.T) {
	dir := t.TempDir()
	x := open(t, dir)
	ctx := t.Context()
	if f := x.Freshness(peerA); f.Status != Syncing || !f.AsOf.IsZero() {
		t.Errorf("before any copy: %+v", f)
	}
	id, ev := peerEvent(t, peerA, change(project(peerA, "a", 1), 1), feed.Position{0, 1, 0})
	if _, err := x.Apply(ctx, peerA, id, ev); err != nil {
		t.Fatal(err)
	}
	if f := x.Freshness(peerA); f.Status != Syncing {
		t.Errorf("copy under way: %+v", f)
	}
	before := time.Now()
	if err := x.Synced(ctx, peerA, id); err != nil {
		t.Fatal(err)
	}
	if f := x.Freshness(peerA); f.Status != Live || f.AsOf.Before(before) {
		t.Errorf("after synced: %+v", f)
	}
	x.Disconnected(ctx, peerA)
	f := x.Freshness(peerA)
	if f.Status != Stale || f.AsOf.Before(before) || f.AsOf.After(time.Now()) {
		t.Errorf("after the feed was lost: %+v", f)
	}
	x.Close()
	x = open(t, dir)
	if g := x.Freshness(peerA); g.Status != Stale || !g.AsOf.Equal(f.AsOf) {
		t.Errorf("after a restart: %+v, want stale as of %s", g, f.AsOf)
	}
	// This park's own part is syncing until the local feed is read once.
	if g := x.Freshness(home); g.Status != Syncing {
		t.Errorf("own part before reading: %+v", g)
	}
}

// Purging a peer (peering deleted, or its feed cannot resume) deletes its
// listings and its position; other parks' stay.
func TestPurgeAndSyncPeers(t *testing.T) {
	x := open(t, t.TempDir())
	ctx := t.Context()
	for i, peer := range []string{peerA, peerB} {
		id, ev := peerEvent(t, peer, change(project(peer, "p", 1), int64(i+1)), feed.Position{0, int64(i + 1), 0})
		if _, err := x.Apply(ctx, peer, id, ev); err != nil {
			t.Fatal(err)
		}
	}
	x.SyncPeers(ctx, []string{peerB})
	if got := titles(t, x, listing.Query{}); !slices.Equal(got, []string{peerB + ":p"}) {
		t.Errorf("after %s left: %v", peerA, got)
	}
	if pos, _ := x.Position(ctx, peerA); pos != "" {
		t.Errorf("position of a purged peer %q", pos)
	}
	if slices.Contains(x.Head().Parks(), peerA) {
		t.Errorf("head still holds %s", peerA)
	}
	if err := x.Purge(ctx, home); err == nil {
		t.Error("purged the park's own listings")
	}
}

// feedLogs is the park's own logs for a feed.Local.
type feedLogs map[listing.Kind][]listing.Change

func (f feedLogs) Changes(ctx context.Context, k listing.Kind, after int64, limit int, wait time.Duration) ([]listing.Change, error) {
	var out []listing.Change
	for _, c := range f[k] {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	if len(out) == 0 && wait > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	return out, nil
}

func (f feedLogs) SeqBefore(context.Context, listing.Kind, time.Time) (int64, error) { return 0, nil }

// The park stream read from the index: this park's own listings (from the
// local feed, everything, private included) and its peers', each once in
// its current state, with positions of each origin's own sequences that a
// second index (another replica) resumes alike.
func TestStreamAcrossParksAndReplicas(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	own := project(home, "own private", 1)
	own.Visibility = listing.Private
	gone := project(home, "own deleted", 2)
	logs := feedLogs{listing.KindProject: {change(own, 1), tombstone(gone, 2)}}
	local := feed.NewLocal(home, logs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go local.Run(ctx)
	var replicas []*Index
	for range 2 {
		x := open(t, t.TempDir())
		go x.FollowLocal(ctx, local)
		if err := x.WaitReady(ctx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		id, ev := peerEvent(t, peerA, change(project(peerA, "peer one", 1), 7), feed.Position{0, 7, 0})
		if _, err := x.Apply(ctx, peerA, id, ev); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, x)
	}
	x := replicas[0]
	if f := x.Freshness(home); f.Status != Live {
		t.Errorf("own part after reading the logs: %+v", f)
	}
	src := Stream{Index: x}
	items, next, err := src.Next(ctx, feed.ClubPosition{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	type item struct{ park, typ, id string }
	var got []item
	for _, it := range items {
		got = append(got, item{it.Park, it.Event.Type(), it.Event.ID()})
	}
	// (All at one time: the order across parks is the parks' order.)
	want := []item{
		{peerA, feed.TypeCreated, peerA + "/project/7"},
		{home, feed.TypeCreated, home + "/project/1"},
		{home, feed.TypeWithdrawn, home + "/project/2"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("stream = %v\nwant %v", got, want)
	}
	if want := "c1~haifa-park.0.7.0~xian-hitech.0.2.0"; next.String() != want {
		t.Errorf("next = %s, want %s", next, want)
	}
	// The other replica resumes the same position: nothing more, nothing
	// again.
	pos, err := replicas[1].Resume(ctx, next.String(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if more, _, err := (Stream{Index: replicas[1]}).Next(ctx, pos, 10); err != nil || len(more) != 0 {
		t.Errorf("replica 2 after the same position: %d items, %v", len(more), err)
	}
	// A position past this park's own logs is refused; one past a peer's
	// part re-reads that part.
	_, err = x.Resume(ctx, "c1~xian-hitech.0.9.0", time.Now())
	if apierror.CodeOf(err) != apierror.Conflict {
		t.Errorf("own part ahead: %v, want Conflict", err)
	}
	pos, err = x.Resume(ctx, "c1~haifa-park.0.99.0~xian-hitech.0.2.0", time.Now())
	if err != nil || pos.Of(peerA) != (feed.Position{}) {
		t.Errorf("peer part ahead: %v, %v; want it read again", pos, err)
	}
	// The index also holds the park's own private listing for its staff.
	if got := titles(t, x, listing.Query{Parks: []string{home}}); !slices.Equal(got, []string{home + ":own private"}) {
		t.Errorf("own part: %v", got)
	}
	var data map[string]any
	json.Unmarshal(items[2].Event.Data(), &data)
	if _, ok := data["title"]; ok {
		t.Errorf("withdrawn carries content: %v", data)
	}
}

// A batch of a peer's events applies as the same events one by one would,
// in one transaction with the last position: a listing put and then
// withdrawn within the batch ends withdrawn (the withdrawal sees the put),
// an older version after a newer one is refused, a withdrawal of a
// listing never held is not news. A batch holding an event it cannot read
// applies none of them and leaves the position where it was.
func TestApplyBatchAsOneByOne(t *testing.T) {
	dir := t.TempDir()
	x := open(t, dir)
	ctx := t.Context()
	v1 := project(peerA, "copper v1", 1)
	v2 := *v1
	v2.Title, v2.Version = "copper v2", 2
	gone := project(peerA, "gone", 1)
	never := project(peerA, "never held", 1)
	kept := project(peerA, "kept", 1)
	steps := []struct {
		c   listing.Change
		pos feed.Position
	}{
		{change(v1, 1), feed.Position{0, 1, 0}},
		{change(gone, 2), feed.Position{0, 2, 0}},
		{change(&v2, 3), feed.Position{0, 3, 0}},
		{change(v1, 1), feed.Position{0, 3, 0}},
		{tombstone(gone, 4), feed.Position{0, 4, 0}},
		{tombstone(never, 5), feed.Position{0, 5, 0}},
		{change(kept, 6), feed.Position{0, 6, 0}},
	}
	var ids []string
	var evs []*feed.Event
	for _, s := range steps {
		id, ev := peerEvent(t, peerA, s.c, s.pos)
		ids, evs = append(ids, id), append(evs, ev)
	}
	fresh, err := x.ApplyBatch(ctx, peerA, ids, evs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, true, false, true, false, true}; !slices.Equal(fresh, want) {
		t.Errorf("fresh %v, want %v", fresh, want)
	}
	if got, want := titles(t, x, listing.Query{}), []string{peerA + ":copper v2", peerA + ":kept"}; !slices.Equal(got, want) {
		t.Errorf("index holds %v, want %v", got, want)
	}
	if pos, _ := x.Position(ctx, peerA); pos != "v1.0.6.0" {
		t.Errorf("position %q, want v1.0.6.0", pos)
	}
	if h := x.Head().Of(peerA); h != (feed.Position{0, 6, 0}) {
		t.Errorf("head %v", h)
	}

	// A failing batch: a good event, then one whose id is no position.
	more := project(peerA, "more", 1)
	id, ev := peerEvent(t, peerA, change(more, 7), feed.Position{0, 7, 0})
	if _, err := x.ApplyBatch(ctx, peerA, []string{id, "nonsense"}, []*feed.Event{ev, ev}); err == nil {
		t.Fatal("a batch with a bad id applied")
	}
	if got := titles(t, x, listing.Query{}); len(got) != 2 {
		t.Errorf("after a failed batch the index holds %v", got)
	}
	if pos, _ := x.Position(ctx, peerA); pos != "v1.0.6.0" {
		t.Errorf("position after a failed batch %q, want v1.0.6.0", pos)
	}
}
