package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// CountFacets counts ls per value of each facet in names, the brute-force
// way: every listing, every value, as the store should.
func CountFacets(ls []*listing.Listing, names []string) listing.FacetCounts {
	out := listing.FacetCounts{}
	for _, n := range names {
		out[n] = map[string]int{}
	}
	add := func(name string, vs ...string) {
		if m := out[name]; m != nil {
			for _, v := range vs {
				if v != "" {
					m[v]++
				}
			}
		}
	}
	for _, l := range ls {
		add(listing.FacetSector, l.Sectors...)
		add(listing.FacetCountry, l.Country)
		add(listing.FacetKind, string(l.Kind))
		add(listing.FacetSeeking, l.Seeking...)
		add(listing.FacetOffering, l.Offering...)
		add(listing.FacetStage, l.Attrs.Stage)
		add(listing.FacetAvailability, l.Attrs.Availability...)
		add(listing.FacetOrgType, l.Attrs.OrgType)
	}
	return out
}

// FacetsString renders counts in a stable order, facets and values sorted.
func FacetsString(c listing.FacetCounts) string {
	var fs []string
	for f, vals := range c {
		var vs []string
		for v, n := range vals {
			vs = append(vs, fmt.Sprintf("%s=%d", v, n))
		}
		slices.Sort(vs)
		fs = append(fs, f+"{"+strings.Join(vs, " ")+"}")
	}
	slices.Sort(fs)
	return strings.Join(fs, " ")
}

// FacetData is a small mixed set: projects and talent, several sectors,
// countries and needs, titles of two words (芯片, 电池), a private listing
// (the only one in JP and aerospace) and one shared with chengdu-hitech
// only (the only one in IL). One listing titled 电池 has the sector
// semiconductors, which 芯片 finds by its vocabulary code.
func FacetData(now time.Time) []*listing.Listing {
	sectors := [][]string{{"new-materials"}, {"ai", "new-energy"}, {"biomedicine"}, {"new-energy"}}
	countries := []string{"CN", "US", "CN", "DE"}
	needs := [][]string{{"investment"}, {"partner", "landing"}, {"market"}, nil}
	stages := []string{"idea", "pilot", "growth", "pilot"}
	var out []*listing.Listing
	for i := range 12 {
		word := "芯片"
		if i%3 == 2 {
			word = "电池"
		}
		at := now.Add(time.Duration(i) * time.Millisecond)
		var l *listing.Listing
		if i%4 == 3 {
			l = NewTalent(fmt.Sprintf("%s 专家 %d", word, i), at)
			l.Attrs.Availability = [][]string{{"mentor"}, {"advisor", "full_time"}}[i%2]
		} else {
			l = NewProject(fmt.Sprintf("%s 项目 %d", word, i), at)
			l.Attrs.Stage = stages[i%4]
			l.Offering = needs[(i+1)%4]
		}
		l.Sectors, l.Country, l.Seeking = sectors[i%4], countries[i%4], needs[i%4]
		out = append(out, l)
	}
	out[5].Title, out[5].Sectors = "电池 项目 semi", []string{"semiconductors"}
	out[0].Visibility, out[0].Country, out[0].Sectors = listing.Private, "JP", []string{"aerospace"}
	out[4].Visibility, out[4].ShareWith, out[4].Country = listing.Peers, []string{"chengdu-hitech"}, "IL"
	return out
}

// FacetMatch is the brute-force reading of the queries testFacets runs.
func FacetMatch(l *listing.Listing, q listing.Query) bool {
	if q.VisibleTo != "" && !l.VisibleTo(q.VisibleTo) {
		return false
	}
	if q.Text == "芯片" && !strings.Contains(l.Title, "芯片") && !slices.Contains(l.Sectors, "semiconductors") {
		return false
	}
	if len(q.Sectors) > 0 && !slices.ContainsFunc(l.Sectors, func(s string) bool { return slices.Contains(q.Sectors, s) }) {
		return false
	}
	return q.Country == "" || l.Country == q.Country
}

// Facet counts cover every match of the query, whatever the page, as the
// caller may see them: equal to a brute-force count over the same
// listings, and to a count over every page of the results.
func testFacets(t *testing.T, open Opener) {
	s := open(t, t.TempDir())
	now := time.Now().UTC()
	all := FacetData(now)
	for _, l := range all {
		must(t, s.Create(ctx(t), l))
	}
	// Current state counts: an edit moves a listing to another sector, a
	// deleted one counts nowhere.
	edited := *all[1]
	edited.Sectors = []string{"agritech"}
	must(t, s.Update(ctx(t), &edited, 0))
	all[1] = &edited
	if _, err := s.Delete(ctx(t), all[7].ID, 0, now); err != nil {
		t.Fatal(err)
	}
	all = slices.Delete(all, 7, 8)

	const haifa, chengdu = "haifa-lifescience", "chengdu-hitech"
	for _, q := range []listing.Query{
		{Text: "芯片"},
		{Text: "芯片", VisibleTo: haifa},
		{Text: "芯片", VisibleTo: chengdu},
		{VisibleTo: haifa},
		{},
		{Sectors: []string{"new-energy"}, VisibleTo: chengdu},
		{Country: "CN"},
	} {
		name := fmt.Sprintf("q=%q visible_to=%q sectors=%v country=%q", q.Text, q.VisibleTo, q.Sectors, q.Country)
		var want []*listing.Listing
		for _, l := range all {
			if FacetMatch(l, q) {
				want = append(want, l)
			}
		}
		q.Facets, q.Limit = listing.FacetNames, 3
		page, err := s.Search(ctx(t), q)
		must(t, err)
		counted := page.Facets
		if got, w := FacetsString(page.Facets), FacetsString(CountFacets(want, listing.FacetNames)); got != w || page.FacetsCapped {
			t.Errorf("%s: facets %s (capped %v)\nwant (brute force) %s", name, got, page.FacetsCapped, w)
		}
		// Every page of the results, counted: the same listings.
		var seen []*listing.Listing
		for {
			seen = append(seen, page.Results...)
			if page.NextCursor == "" {
				break
			}
			// Counts are optional on later pages: the cursor is the same.
			q.Cursor, q.Facets = page.NextCursor, nil
			if page, err = s.Search(ctx(t), q); err != nil {
				t.Fatal(err)
			}
			if page.Facets != nil {
				t.Errorf("%s: facets on a page that asked none", name)
			}
		}
		if got, w := FacetsString(CountFacets(seen, listing.FacetNames)), FacetsString(CountFacets(want, listing.FacetNames)); got != w {
			t.Errorf("%s: results counted %s\nwant (brute force) %s", name, got, w)
		}
		if q.VisibleTo == haifa {
			if c := counted; c[listing.FacetCountry]["JP"] != 0 || c[listing.FacetCountry]["IL"] != 0 || c[listing.FacetSector]["aerospace"] != 0 {
				t.Errorf("%s: counts reveal a listing the peer may not see: %s", name, FacetsString(c))
			}
		}
	}
	// Only the facets asked for.
	page, err := s.Search(ctx(t), listing.Query{Text: "芯片", Facets: []string{listing.FacetStage, listing.FacetCountry}})
	must(t, err)
	if len(page.Facets) != 2 || page.Facets[listing.FacetStage] == nil || page.Facets[listing.FacetCountry]["JP"] != 1 {
		t.Errorf("facets stage,country: %s", FacetsString(page.Facets))
	}
	if page, _ := s.Search(ctx(t), listing.Query{Text: "芯片"}); page.Facets != nil || page.FacetsCapped {
		t.Errorf("facets without asking: %s", FacetsString(page.Facets))
	}
}
