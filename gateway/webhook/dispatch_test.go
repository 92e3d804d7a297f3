package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// waitFor polls cond until it holds; it fails the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// TestDispatchReadsNothingBackWithoutWebhooks: with no webhook registered
// the dispatcher reads no change back from the club index (its position
// skips to the head); a webhook registered later gets the changes made
// after it, and none from before.
func TestDispatchReadsNothingBackWithoutWebhooks(t *testing.T) {
	const home, peer = "xian-hitech", "haifa-park"
	ctx := t.Context()
	x, err := clubindex.Open(ctx, t.TempDir(), home, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	seq := int64(0)
	add := func(title string) string {
		t.Helper()
		seq++
		now := time.Now().UTC()
		l := &listing.Listing{ID: listing.NewID(listing.KindProject, now), Park: peer, Kind: listing.KindProject,
			Title: title, Sectors: []string{"new-materials"}, Country: "IL", Visibility: listing.Club,
			Version: 1, CreatedAt: now, UpdatedAt: now, Attrs: listing.Attrs{Stage: "pilot"}}
		c := listing.Change{Seq: seq, FirstSeq: seq, Op: listing.OpUpdated, Park: peer, Kind: l.Kind, ListingID: l.ID,
			Version: 1, At: now, Listing: l, Audience: listing.Audience{Club: true}}
		ev, _, _, err := feed.Parse(peer, feed.Marshal(feed.For(peer, l.Kind, c, home, 0)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x.Apply(ctx, peer, (feed.Position{0, seq, 0}).String(), ev); err != nil {
			t.Fatal(err)
		}
		return l.ID
	}

	var mu sync.Mutex
	var got []string // listing ids delivered
	recv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		var ce struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &ce)
		mu.Lock()
		got = append(got, ce.Data.ID)
		mu.Unlock()
	})
	wh := newHooks(t, nil, nil, "127.0.0.0/8")
	wh.Index, wh.Poll = x, 10*time.Millisecond
	// A stored position: the dispatcher starts from it.
	if err := wh.State.Enqueue(ctx, nil, x.Head().String()); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); wh.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	before := []string{add("before 1"), add("before 2")}
	head := x.Head().String()
	waitFor(t, "the dispatcher skips to the head", func() bool {
		s, _ := wh.skippedTo.Load().(string)
		return s == head
	})
	if n := wh.readBack.Load(); n != 0 {
		t.Errorf("without webhooks the dispatcher read %d changes back", n)
	}

	if _, err := wh.Create(ctx, recv.URL+"/hook", "", feed.Filter{}); err != nil {
		t.Fatal(err)
	}
	after := add("after")
	waitFor(t, "the webhook gets the change made after it", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got, after)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range before {
		if slices.Contains(got, id) {
			t.Errorf("the webhook got %s, changed before it was registered", id)
		}
	}
	if wh.readBack.Load() == 0 {
		t.Error("with a webhook the dispatcher read nothing back")
	}
}
