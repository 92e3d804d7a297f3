package clubsearch_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

// peers is a fixed peer set.
type peers map[string]*peering.Peer

func (p peers) List() []*peering.Peer {
	var out []*peering.Peer
	for _, v := range p {
		out = append(out, v)
	}
	return out
}

func (p peers) Get(id string) (*peering.Peer, bool) { v, ok := p[id]; return v, ok }

// noLocal is a park with nothing of its own: these tests are about peers.
type noLocal struct{}

func (noLocal) Search(context.Context, listing.Query, []listing.Kind, string) (*localsearch.Page, error) {
	return &localsearch.Page{Results: []*listing.Listing{}}, nil
}

// peerServer is a real HTTP peer on loopback that answers every search
// after delay with status.
func peerServer(t *testing.T, delay time.Duration, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"results":[],"next_cursor":""}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func newClub(t *testing.T, ps peers) *clubsearch.Club {
	t.Helper()
	ks, err := parkkey.Init(t.TempDir(), "xian-hitech")
	if err != nil {
		t.Fatal(err)
	}
	c := clubsearch.New(slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	c.Park, c.Local, c.Peers, c.Keys, c.Client = "xian-hitech", noLocal{}, ps, func() *parkkey.KeySet { return ks }, http.DefaultClient
	c.Cursors = search.NewSigner([]byte("test cursor key"))
	c.BreakerOpenFor = time.Minute // stays open for the test once open
	return c
}

func breakerOf(t *testing.T, c *clubsearch.Club, peer string) string {
	t.Helper()
	for _, v := range c.PeerViews() {
		if v.Park == peer {
			return v.Breaker
		}
	}
	t.Fatalf("no view of %s", peer)
	return ""
}

func clubSearch(t *testing.T, c *clubsearch.Club, budget time.Duration, park string) string {
	t.Helper()
	resp, err := c.Search(context.Background(), search.Request{Kinds: listing.Kinds, Scope: search.ScopeClub, Budget: budget, Parks: []string{park}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Parks.Details {
		if d.Park == park {
			return d.Status
		}
	}
	t.Fatalf("%s not in the answer", park)
	return ""
}

// A caller's tiny budget says nothing about a peer: however many searches
// with timeout_ms=50 time out at a peer answering in 200 ms, its breaker
// stays closed, and the next search with a normal budget gets its answer.
func TestShortBudgetsDoNotTripAHealthyPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real HTTP with deliberate delays")
	}
	ps := peers{"chengdu-hitech": {ID: "chengdu-hitech", URL: peerServer(t, 200*time.Millisecond, http.StatusOK)}}
	c := newClub(t, ps)
	for i := range 6 {
		if got := clubSearch(t, c, 50*time.Millisecond, "chengdu-hitech"); got != search.StatusTimeout {
			t.Fatalf("search %d with a 50 ms budget: status %q, want %q", i, got, search.StatusTimeout)
		}
	}
	if got := breakerOf(t, c, "chengdu-hitech"); got != "closed" {
		t.Fatalf("breaker after short-budget searches: %s, want closed", got)
	}
	if got := clubSearch(t, c, 2*time.Second, "chengdu-hitech"); got != search.StatusOK {
		t.Fatalf("search with a normal budget: %q, want ok", got)
	}
}

// A peer's own failures still open its breaker: errors, and slowness
// beyond the floor it was given.
func TestFailingPeersStillOpenTheirBreaker(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real HTTP with deliberate delays")
	}
	cases := []struct {
		name      string
		delay     time.Duration
		status    int
		budget    time.Duration
		firstWant string
	}{
		{"answers 500", 0, http.StatusInternalServerError, 2 * time.Second, search.StatusError},
		{"slower than the floor", 3 * time.Second, http.StatusOK, 800 * time.Millisecond, search.StatusTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := peers{"haifa-lifescience": {ID: "haifa-lifescience", URL: peerServer(t, tc.delay, tc.status)}}
			c := newClub(t, ps)
			for i := range 3 {
				if got := clubSearch(t, c, tc.budget, "haifa-lifescience"); got != tc.firstWant {
					t.Fatalf("search %d: status %q, want %q", i, got, tc.firstWant)
				}
			}
			if got := breakerOf(t, c, "haifa-lifescience"); got != "open" {
				t.Fatalf("breaker after 3 failures: %s, want open", got)
			}
			if got := clubSearch(t, c, tc.budget, "haifa-lifescience"); got != search.StatusCircuitOpen {
				t.Fatalf("search with the breaker open: %q, want %q", got, search.StatusCircuitOpen)
			}
			// Even a short-budget search is refused while it is open.
			if got := clubSearch(t, c, 50*time.Millisecond, "haifa-lifescience"); got != search.StatusCircuitOpen {
				t.Fatalf("short search with the breaker open: %q, want %q", got, search.StatusCircuitOpen)
			}
		})
	}
}
