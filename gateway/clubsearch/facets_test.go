package clubsearch_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// countingLocal is a park whose own search returns one listing and
// counts it.
type countingLocal struct{ l *listing.Listing }

func (o countingLocal) Search(_ context.Context, q listing.Query, _ []listing.Kind, _ string) (*localsearch.Page, error) {
	p := &localsearch.Page{Results: []*listing.Listing{o.l}}
	if len(q.Facets) > 0 {
		p.Facets = storetest.CountFacets([]*listing.Listing{o.l}, q.Facets)
	}
	return p, nil
}

// facetPeer is a real HTTP peer: a current one answers its listings with
// their counts when asked; an older one refuses the facets field as its
// strict decoder would (400 naming facets) and answers without counts.
func facetPeer(t *testing.T, older bool, asked *atomic.Int32, ls ...*listing.Listing) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req clubsearch.FederationSearch
		json.Unmarshal(b, &req)
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if older && strings.Contains(string(b), `"facets"`) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"code":"invalid","message":"facets is not a search field","field":"facets"}}`))
			return
		}
		ans := clubsearch.Answer{Results: ls}
		if len(req.Facets) > 0 {
			ans.Facets = storetest.CountFacets(ls, req.Facets)
		}
		json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// In mode=live the counts are this park's and each peer's summed; an
// older peer (refusing the field, then answering without counts) makes
// them partial, never fails the search.
func TestLiveSearchSumsFacets(t *testing.T) {
	now := time.Now().UTC()
	data := storetest.FacetData(now)
	own := data[2]
	own.Park = "xian-hitech"
	chengdu := []*listing.Listing{data[3], data[5], data[6]}
	for _, l := range chengdu {
		l.Park = "chengdu-hitech"
	}
	nantong := data[8]
	nantong.Park = "nantong-hitech"
	var askedChengdu, askedNantong atomic.Int32
	ps := peers{"chengdu-hitech": {ID: "chengdu-hitech", URL: facetPeer(t, false, &askedChengdu, chengdu...)}}
	c := newClub(t, ps)
	c.Local = countingLocal{own}
	req := search.Request{Query: listing.Query{Facets: listing.FacetNames}, Kinds: listing.Kinds, Scope: search.ScopeClub, Mode: search.ModeLive, Budget: 2 * time.Second}
	resp, err := c.Search(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := storetest.CountFacets(append([]*listing.Listing{own}, chengdu...), listing.FacetNames)
	if got, w := storetest.FacetsString(resp.Facets), storetest.FacetsString(want); got != w || resp.FacetsPartial || resp.FacetsCapped {
		t.Errorf("facets %s (partial %v, capped %v)\nwant %s", got, resp.FacetsPartial, resp.FacetsCapped, w)
	}

	ps["nantong-hitech"] = &peering.Peer{ID: "nantong-hitech", URL: facetPeer(t, true, &askedNantong, nantong)}
	c = newClub(t, ps)
	c.Local = countingLocal{own}
	resp, err = c.Search(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, w := storetest.FacetsString(resp.Facets), storetest.FacetsString(want); got != w || !resp.FacetsPartial || resp.Partial {
		t.Errorf("with an older peer: facets %s (partial %v, results partial %v)\nwant %s, facets partial, results complete", got, resp.FacetsPartial, resp.Partial, w)
	}
	if len(resp.Results) != 5 || askedNantong.Load() != 2 {
		t.Errorf("with an older peer: %d results, it was asked %d times; want 5 results, asked twice (with and without facets)", len(resp.Results), askedNantong.Load())
	}
	// Without facets asked, none answered.
	req.Query.Facets = nil
	if resp, err = c.Search(context.Background(), req); err != nil || resp.Facets != nil {
		t.Errorf("no facets asked: %v, %v", resp.Facets, err)
	}
}

// storeIndex is a club index over a real SQLite store in index mode,
// every park live.
type storeIndex struct{ s *sqlitestore.Store }

func (x storeIndex) Search(ctx context.Context, q listing.Query) (*listing.Page, error) {
	return x.s.Search(ctx, q)
}
func (storeIndex) Freshness(string) clubindex.Freshness {
	return clubindex.Freshness{Status: search.StatusLive}
}
func (x storeIndex) Get(ctx context.Context, park, id string) (*listing.Listing, error) {
	return x.s.GetOf(ctx, park, id)
}

// A club search from the index counts every match of the target parks in
// one query: the brute-force count of the index's listings, narrowed by
// parks and kinds as the results are.
func TestIndexSearchCountsFacets(t *testing.T) {
	st, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "club.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	data := storetest.FacetData(time.Now().UTC())
	parks := []string{"xian-hitech", "chengdu-hitech", "haifa-lifescience"}
	for i, l := range data {
		l.Park = parks[i%3]
		if _, err := st.Put(t.Context(), l, int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	ps := peers{"chengdu-hitech": {ID: "chengdu-hitech"}, "haifa-lifescience": {ID: "haifa-lifescience"}}
	c := newClub(t, ps)
	c.Index = storeIndex{st}
	for _, r := range []search.Request{
		{Query: listing.Query{Text: "芯片"}, Kinds: listing.Kinds},
		{Query: listing.Query{}, Kinds: []listing.Kind{listing.KindTalent}, Exclude: []string{"haifa-lifescience"}},
		{Query: listing.Query{Sectors: []string{"new-energy"}}, Kinds: listing.Kinds, Parks: []string{"chengdu-hitech"}},
	} {
		var want []*listing.Listing
		for _, l := range data {
			in := (r.Parks == nil || l.Park == r.Parks[0]) && (r.Exclude == nil || l.Park != r.Exclude[0]) && slices.Contains(r.Kinds, l.Kind)
			if in && storetest.FacetMatch(l, r.Query) {
				want = append(want, l)
			}
		}
		r.Scope, r.Mode, r.Budget = search.ScopeClub, search.ModeIndex, time.Second
		r.Query.Facets, r.Query.Limit = listing.FacetNames, 2
		resp, err := c.Search(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		hits := 0
		for _, d := range resp.Parks.Details {
			hits += d.Hits
		}
		if got, w := storetest.FacetsString(resp.Facets), storetest.FacetsString(storetest.CountFacets(want, listing.FacetNames)); got != w || resp.FacetsCapped || hits != len(want) {
			t.Errorf("%+v: facets %s (capped %v), %d hits\nwant %s, %d hits", r.Query, got, resp.FacetsCapped, hits, w, len(want))
		}
	}
}
