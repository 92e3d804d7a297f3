package sample_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/local/sample"
	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// kindStores is localsearch.Services over one real store per kind.
type kindStores map[listing.Kind]*sqlitestore.Store

func (s kindStores) Search(ctx context.Context, k listing.Kind, q listing.Query) (*listing.Page, error) {
	return s[k].Search(ctx, q)
}

// qualityFixture holds every park's sample listings twice: in one club
// index (a club search in index mode) and in one store per kind searched
// through the gateway's local search (three sources merged).
type qualityFixture struct {
	all   []*listing.Listing
	club  *sqlitestore.Store
	local *localsearch.Searcher
}

func newQualityFixture(t *testing.T) *qualityFixture {
	t.Helper()
	parks, err := sample.Parks()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	dir := t.TempDir()
	f := &qualityFixture{}
	if f.club, err = sqlitestore.Open(ctx, filepath.Join(dir, "club.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.club.Close() })
	stores := kindStores{}
	for _, k := range listing.Kinds {
		s, err := sqlitestore.Open(ctx, filepath.Join(dir, string(k)+".db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[k] = s
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range parks {
		for i := range p.Listings {
			l := p.Listings[i]
			now = now.Add(time.Second)
			l.ID, l.Park, l.Version, l.CreatedAt, l.UpdatedAt = listing.NewID(l.Kind, now), p.Park.ID, 1, now, now
			f.all = append(f.all, &l)
		}
	}
	for i, l := range f.all {
		c := *l
		if _, err := f.club.Put(ctx, &c, int64(i+1)); err != nil {
			t.Fatal(err)
		}
		if err := stores[l.Kind].Create(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	f.local = &localsearch.Searcher{Services: stores, Cursors: search.NewSigner([]byte("quality"))}
	return f
}

// search runs q in scope ("club" or "local") and returns the results.
func (f *qualityFixture) search(t *testing.T, scope string, q listing.Query) []*listing.Listing {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 20
	}
	if scope == "club" {
		page, err := f.club.Search(t.Context(), q)
		if err != nil {
			t.Fatalf("club search %q: %v", q.Text, err)
		}
		return page.Results
	}
	page, err := f.local.Search(t.Context(), q, listing.Kinds, "")
	if err != nil || len(page.Failures) > 0 {
		t.Fatalf("local search %q: %v %v", q.Text, err, page)
	}
	return page.Results
}

// rankOf is the 1-based rank of the listing whose title contains title
// (0: absent).
func rankOf(res []*listing.Listing, title string) int {
	for i, l := range res {
		if strings.Contains(l.Title, title) {
			return i + 1
		}
	}
	return 0
}

// TestSearchQualityExamples runs each failure class of issue 14 on the
// sample data, in local and club search: the listing must be found, within
// the given rank.
func TestSearchQualityExamples(t *testing.T) {
	f := newQualityFixture(t)
	tests := []struct {
		class, q string
		find     string // a title substring
		within   int
	}{
		{"traditional query, simplified listing", "矽谷", "Silicon Valley Pre-incubation Platform", 10},
		{"traditional query, simplified listing", "醫療", "Medtronic", 10},
		{"traditional query, simplified listing", "蘭州", "Lanzhou Vacuum Equipment", 10},
		{"simplified query, traditional listing", "硅谷", "Lanzhou Projects Roadshow in Silicon Valley", 5},
		{"simplified query, traditional listing", "兰州", "Lanzhou Projects Roadshow in Silicon Valley", 5},
		{"simplified query, traditional listing", "医疗器械", "Lanzhou Projects Roadshow in Silicon Valley", 20},
		{"long word", "骨科植入", "Bone Implants", 2},
		{"long word", "二氧化碳热泵", "CO2 Air-source Heat Pump", 1},
		{"long word, not verbatim", "可降解支架", "Bioresorbable Cardiovascular Scaffold", 1},
		{"synonym", "太阳能", "Solar Farms", 2},
		{"synonym", "太阳能", "HJT Solar Cell", 2},
		{"synonym", "photovoltaic", "HJT Solar Cell", 2},
		{"synonym", "solar", "Solar Farms", 2},
		{"synonym", "人工智能", "Digital Pathology AI", 10},
		{"synonym", "人工智能", "Low-power Edge AI Chip", 10},
		{"vocabulary code", "新材料", "CuCrZr Copper-Alloy Rotor", 20},
		{"vocabulary code", "新材料", "Graphene–copper Composite", 20},
		{"place romanisation", "Xian", "Xi'an Hi-tech Zone Administrative Committee", 5},
		{"place romanisation", "Xi'an", "西安高新区管委会", 5},
		{"place romanisation", "西安", "1896 (Xi'an) Holdings", 10},
		{"place romanisation", "Haifa", "海法生命科学园", 2},
		{"mixed", "AI芯片", "Low-power Edge AI Chip", 1},
		{"mixed", "新能源 battery", "Solid-state Battery Separator", 1},
		{"prefix", "Graph", "Graphene–copper Composite", 1},
		{"prefix", "Siru", "Shaanxi Sirui New Materials", 2},
		{"plural", "heat pumps", "CO2 Air-source Heat Pump", 3},
		{"plural", "batteries", "Solid-state Battery Separator", 2},
	}
	for _, scope := range []string{"local", "club"} {
		for _, tt := range tests {
			res := f.search(t, scope, listing.Query{Text: tt.q})
			if r := rankOf(res, tt.find); r == 0 || r > tt.within {
				var titles []string
				for _, l := range res {
					titles = append(titles, l.Title)
				}
				t.Errorf("%s search %q (%s): %q at rank %d, want within %d; got %q", scope, tt.q, tt.class, tt.find, r, tt.within, titles)
			}
		}
	}
}

// TestSearchRecall: every listing of a sector is found by the sector's
// Chinese or English name, and 人工智能 finds most AI listings, though
// their text says AI, machine learning or nothing at all.
func TestSearchRecall(t *testing.T) {
	f := newQualityFixture(t)
	for _, tt := range []struct{ q, sector string }{{"新材料", "new-materials"}, {"new materials", "new-materials"}, {"人工智能", "ai"}, {"医疗器械", "medical-devices"}} {
		res := f.search(t, "club", listing.Query{Text: tt.q, Limit: 100})
		for _, l := range f.all {
			if slices.Contains(l.Sectors, tt.sector) && rankOf(res, l.Title) == 0 {
				t.Errorf("%q does not find %q (sector %s)", tt.q, l.Title, tt.sector)
			}
		}
	}
}

// TestTitleMatchOutranksBodyMatch: in local search (three services merged)
// a title match of any kind ranks above a body-only match of another:
// 芯片 is in two projects' and a talent's titles, and only in the body of
// another talent (Daniel Whitaker).
func TestTitleMatchOutranksBodyMatch(t *testing.T) {
	f := newQualityFixture(t)
	for _, scope := range []string{"local", "club"} {
		res := f.search(t, scope, listing.Query{Text: "芯片"})
		body := rankOf(res, "Daniel Whitaker")
		for _, title := range []string{"Low-power Edge AI Chip", "Photonic Chip Packaging Pilot Line", "Heavy-ion Therapy Dose Monitoring Chip", "Han Lifeng"} {
			if r := rankOf(res, title); r == 0 || body != 0 && r > body {
				t.Errorf("%s: title match %q at %d, body-only Daniel Whitaker at %d", scope, title, r, body)
			}
		}
		if body == 0 {
			t.Errorf("%s: the body-only match is not found at all", scope)
		}
		for _, l := range res {
			if l.Match == nil || l.Match.Snippet == "" {
				t.Errorf("%s: %q carries no match snippet", scope, l.Title)
			}
		}
	}
}

// TestZeroResultsOnlyWhenNothingIsRelevant: queries of the issue that
// found nothing now find something.
func TestNoZeroResults(t *testing.T) {
	f := newQualityFixture(t)
	for _, q := range []string{"矽谷", "醫療", "蘭州", "骨科植入", "二氧化碳热泵", "太阳能", "photovoltaic", "Xian", "Graph", "Siru", "纳米铜", "量子通信"} {
		if res := f.search(t, "club", listing.Query{Text: q}); len(res) == 0 {
			t.Errorf("%q finds nothing", q)
		}
	}
}
