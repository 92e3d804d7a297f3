package clubsearch_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
)

// oneLocal is a park whose own search returns one listing.
type oneLocal struct{ l *listing.Listing }

func (o oneLocal) Search(context.Context, listing.Query, []listing.Kind, string) (*localsearch.Page, error) {
	return &localsearch.Page{Results: []*listing.Listing{o.l}}, nil
}

// answering is a real HTTP peer answering every search with ls.
func answering(t *testing.T, ls ...*listing.Listing) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"results": ls, "next_cursor": ""})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func project(park, title string, match *listing.Match) *listing.Listing {
	now := time.Now().UTC()
	l := storetest.NewProject(title, now)
	l.ID, l.Park, l.Version, l.Match = listing.NewID(listing.KindProject, now), park, 1, match
	return l
}

// In mode=live, answers merge by score: a peer's better match comes before
// this park's weaker one; a peer's malformed match is refused like any
// malformed answer; an older peer that sends no match still counts, merged
// by rank.
func TestLiveSearchMergesByScore(t *testing.T) {
	own := project("xian-hitech", "heat recovery office", &listing.Match{Score: 0.3, Snippet: "a heat pump", Highlights: [][2]int{{2, 6}, {7, 11}}})
	better := project("chengdu-hitech", "CO2 heat pump", &listing.Match{Score: 1.25})
	bad := project("haifa-lifescience", "heat pump", &listing.Match{Score: 1, Snippet: "pump", Highlights: [][2]int{{2, 9}}})
	old := project("nantong-hitech", "heat pump, older peer", nil)
	ps := peers{
		"chengdu-hitech":    {ID: "chengdu-hitech", URL: answering(t, better)},
		"haifa-lifescience": {ID: "haifa-lifescience", URL: answering(t, bad)},
	}
	c := newClub(t, ps)
	c.Local = oneLocal{own}
	q := listing.Query{Text: "heat pump"}
	resp, err := c.Search(context.Background(), search.Request{Query: q, Kinds: listing.Kinds, Scope: search.ScopeClub, Mode: search.ModeLive, Budget: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 2 || resp.Results[0].ID != better.ID || resp.Results[1].ID != own.ID {
		t.Fatalf("results %v, want the peer's better match, then this park's", resp.Results)
	}
	for _, d := range resp.Parks.Details {
		if d.Park == "haifa-lifescience" && d.Status != search.StatusError {
			t.Errorf("a peer answering a highlight outside its snippet: %+v, want error", d)
		}
	}

	ps = peers{"nantong-hitech": {ID: "nantong-hitech", URL: answering(t, old)}}
	c = newClub(t, ps)
	c.Local = oneLocal{own}
	resp, err = c.Search(context.Background(), search.Request{Query: q, Kinds: listing.Kinds, Scope: search.ScopeClub, Mode: search.ModeLive, Budget: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 2 || resp.Partial {
		t.Fatalf("with an older peer: %d results, partial %v; want both, complete", len(resp.Results), resp.Partial)
	}
}
