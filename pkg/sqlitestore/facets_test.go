package sqlitestore_test

import (
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
)

// In index mode (a club index: many parks, every kind), facet counts
// cover every match of the parks and kinds asked, as the brute-force count
// of the same listings; a withdrawn listing counts nowhere.
func TestFacetsInIndexMode(t *testing.T) {
	s := openStore(t, t.TempDir())
	now := time.Now().UTC()
	const xian, haifa = "xian-hitech", "haifa-lifescience"
	data := storetest.FacetData(now)
	byPark := map[string][]*listing.Listing{}
	for i, l := range data {
		l.Park = []string{xian, haifa}[i%2]
		put(t, s, l, int64(i+1), true)
		byPark[l.Park] = append(byPark[l.Park], l)
	}
	gone := byPark[haifa][0]
	remove(t, s, haifa, gone.Kind, gone.ID, gone.Version+1, 100, true)
	byPark[haifa] = byPark[haifa][1:]

	for _, c := range []struct {
		name  string
		q     listing.Query
		match func(*listing.Listing) bool
	}{
		{"haifa only", listing.Query{Parks: []string{haifa}}, func(*listing.Listing) bool { return true }},
		{"both parks, 芯片", listing.Query{Text: "芯片", Parks: []string{xian, haifa}}, func(l *listing.Listing) bool {
			return storetest.FacetMatch(l, listing.Query{Text: "芯片"})
		}},
		{"talent, xian excluded", listing.Query{Kinds: []listing.Kind{listing.KindTalent}, ExcludeParks: []string{xian}}, func(l *listing.Listing) bool {
			return l.Kind == listing.KindTalent && l.Park != xian
		}},
	} {
		var want []*listing.Listing
		for _, park := range []string{xian, haifa} {
			for _, l := range byPark[park] {
				inParks := c.q.Parks == nil || park == c.q.Parks[0] || len(c.q.Parks) > 1
				if inParks && c.match(l) {
					want = append(want, l)
				}
			}
		}
		c.q.Facets = listing.FacetNames
		page, err := s.Search(t.Context(), c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got, w := storetest.FacetsString(page.Facets), storetest.FacetsString(storetest.CountFacets(want, listing.FacetNames)); got != w || page.FacetsCapped {
			t.Errorf("%s: facets %s (capped %v)\nwant %s", c.name, got, page.FacetsCapped, w)
		}
	}
}

// Past FacetScan matches the counts cover the newest FacetScan and say
// they are capped; the page itself is unchanged.
func TestFacetsCapped(t *testing.T) {
	s := openStore(t, t.TempDir())
	s.FacetScan = 4
	now := time.Now().UTC()
	data := storetest.FacetData(now)
	for _, l := range data {
		if err := s.Create(t.Context(), l); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		q    listing.Query
	}{{"no text", listing.Query{}}, {"text", listing.Query{Text: "芯片"}}, {"filter", listing.Query{Sectors: []string{"new-energy"}}}} {
		var match []*listing.Listing
		for _, l := range data {
			if storetest.FacetMatch(l, c.q) {
				match = append(match, l)
			}
		}
		// The newest four matches: data is in creation order.
		newest := match[len(match)-4:]
		c.q.Facets, c.q.Limit = listing.FacetNames, 2
		page, err := s.Search(t.Context(), c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got, w := storetest.FacetsString(page.Facets), storetest.FacetsString(storetest.CountFacets(newest, listing.FacetNames)); got != w || !page.FacetsCapped {
			t.Errorf("%s: facets %s (capped %v)\nwant the newest four's %s, capped", c.name, got, page.FacetsCapped, w)
		}
		if len(page.Results) != 2 {
			t.Errorf("%s: %d results", c.name, len(page.Results))
		}
	}
	// Exactly FacetScan matches: all counted, not capped.
	page, err := s.Search(t.Context(), listing.Query{Country: "CN", Facets: []string{listing.FacetCountry}})
	if err != nil {
		t.Fatal(err)
	}
	if page.Facets[listing.FacetCountry]["CN"] != 4 || page.FacetsCapped {
		t.Errorf("country CN: %s (capped %v), want CN=4 not capped", storetest.FacetsString(page.Facets), page.FacetsCapped)
	}
}
