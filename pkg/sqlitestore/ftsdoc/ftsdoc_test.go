package ftsdoc

import (
	"slices"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/fulltext"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

var allFacets = []Facet{FacetSector, FacetCountry, FacetSeeking, FacetOffering, FacetStage, FacetAvailability,
	FacetOrgType, FacetVisibility, FacetShareWith, FacetPark, FacetKind}

// A token is digits only, and no value of one facet has the token of any
// value of another: the two-digit prefixes start with "0", and one-digit
// and two-digit tokens differ in length modulo 3.
func TestTokensAreDigitsAndNeverMeetAcrossFacets(t *testing.T) {
	if got := Token(FacetPark, "a"); got != "01097" {
		t.Fatalf(`Token(FacetPark, "a") = %q, want "01097"`, got)
	}
	values := []string{"", "a", "ab", "1", "01", "ai", "new-energy", "xian-hitech", "人才"}
	owner := map[string]Facet{}
	for _, f := range allFacets {
		for _, v := range values {
			tok := Token(f, v)
			if strings.Trim(tok, "0123456789") != "" {
				t.Fatalf("Token(%q, %q) = %q holds more than digits", f, v, tok)
			}
			if g, ok := owner[tok]; ok && g != f {
				t.Fatalf("Token(%q, %q) = %q is also a token of facet %q", f, v, tok, g)
			}
			owner[tok] = f
		}
	}
}

func testListing() *listing.Listing {
	l := &listing.Listing{ID: "p1", Park: "xian-hitech", Kind: listing.KindProject, Title: "Copper nano 电池",
		Summary: "A battery for cold climates", City: "Xi'an", Country: "CN", Tags: []string{"energy"},
		Sectors: []string{"new-energy", ""}, Seeking: []string{"funding"}, Offering: []string{"talent"},
		Visibility: listing.Peers, ShareWith: []string{"haifa"}}
	l.Attrs.Stage = "prototype"
	l.Attrs.Expertise = []string{"chemistry"}
	l.Attrs.Affiliation = "Xidian"
	return l
}

func TestOf(t *testing.T) {
	l := testListing()
	d := Of(l)
	if want := fulltext.IndexText(l.Title); d.Title != want {
		t.Errorf("Title = %q, want %q", d.Title, want)
	}
	if want := []string{"A battery for cold climates", "Xi'an", "energy", "chemistry", "Xidian"}; !slices.Equal(Body(l), want) {
		t.Errorf("Body = %q, want %q", Body(l), want)
	}
	if want := fulltext.IndexText(strings.Join(Body(l), "\n")); d.Body != want {
		t.Errorf("Body column = %q, want %q", d.Body, want)
	}
	wantFacets := strings.Join([]string{Token(FacetSector, "new-energy"), Token(FacetCountry, "CN"),
		Token(FacetSeeking, "funding"), Token(FacetOffering, "talent"), Token(FacetStage, "prototype"),
		Token(FacetVisibility, "peers"), Token(FacetShareWith, "haifa"), Token(FacetPark, "xian-hitech"),
		Token(FacetKind, "project")}, " ")
	if d.Facets != wantFacets {
		t.Errorf("Facets = %q, want %q (empty values left out)", d.Facets, wantFacets)
	}
	if want := " sector:new-energy country:CN kind:project seeking:funding offering:talent stage:prototype "; d.Codes != want {
		t.Errorf("Codes = %q, want %q", d.Codes, want)
	}
	f := RankFields(d.Rank)
	if f.Title != fulltext.Normalize(l.Title) || f.Body != fulltext.Normalize(strings.Join(Body(l), "\n")) {
		t.Errorf("RankFields(%q) = title %q, body %q", d.Rank, f.Title, f.Body)
	}
	for _, c := range []struct {
		field, value string
		want         bool
	}{{"sector", "new-energy", true}, {"seeking", "funding", true}, {"offering", "talent", true},
		{"stage", "prototype", true}, {"sector", "new", false}, {"seeking", "talent", false}, {"country", "CN", false}} {
		if got := f.Has(c.field, c.value); got != c.want {
			t.Errorf("RankFields.Has(%q, %q) = %v, want %v", c.field, c.value, got, c.want)
		}
	}
}

func TestPlanWithoutTextOrFilterWalksTheTable(t *testing.T) {
	p := PlanSearch(listing.Query{Parks: []string{"a", "", "b"}, ExcludeParks: []string{"c"},
		Kinds: []listing.Kind{listing.KindTalent}}, fulltext.Query{})
	if !slices.Equal(p.Tiers, []string{""}) || p.All != "" || p.Text != nil {
		t.Fatalf("plan = %+v, want one table walk", p)
	}
	if want := " AND +park IN (?, ?) AND +park NOT IN (?) AND +kind IN (?)"; p.Columns != want {
		t.Errorf("Columns = %q, want %q", p.Columns, want)
	}
	if want := []any{"a", "b", "c", "talent"}; !slices.Equal(p.ColumnArgs, want) {
		t.Errorf("ColumnArgs = %v, want %v", p.ColumnArgs, want)
	}
}

func TestPlanOfFiltersIsOneMatch(t *testing.T) {
	p := PlanSearch(listing.Query{Sectors: []string{"ai", "biomedicine"}, VisibleTo: "haifa",
		Parks: []string{"a"}, ExcludeParks: []string{"c"}}, fulltext.Query{})
	want := `((facets : ("` + Token(FacetSector, "ai") + `" OR "` + Token(FacetSector, "biomedicine") + `"))` +
		` AND (facets : ("` + Token(FacetVisibility, "club") + `" OR ("` + Token(FacetVisibility, "peers") + `" AND "` + Token(FacetShareWith, "haifa") + `")))` +
		` AND (facets : ("` + Token(FacetPark, "a") + `"))) NOT (facets : ("` + Token(FacetPark, "c") + `"))`
	if !slices.Equal(p.Tiers, []string{want}) || p.All != want || p.Columns != "" || p.Text != nil {
		t.Fatalf("plan = %+v, want the one tier %q", p, want)
	}
}

func TestPlanOfText(t *testing.T) {
	aq := fulltext.Analyze("copper heat pump nano").WithoutPrefix()
	p := PlanSearch(listing.Query{Text: "copper heat pump nano", Country: "CN"}, aq)
	if p.Text == nil || len(p.Tiers) == 0 || p.All != p.Tiers[len(p.Tiers)-1] {
		t.Fatalf("plan = %+v, want tiers, the last one All", p)
	}
	if aq.MinConcepts < len(aq.Concepts) && len(p.Tiers) != 2 {
		t.Errorf("%d of %d concepts suffice, but the plan has %d tiers", aq.MinConcepts, len(aq.Concepts), len(p.Tiers))
	}
	country := `(facets : ("` + Token(FacetCountry, "CN") + `"))`
	for _, m := range p.Tiers {
		if !strings.HasSuffix(m, " AND "+country) || !strings.Contains(m, `"copper"`) {
			t.Errorf("tier %q lacks the text or the country filter", m)
		}
	}
	// A vocabulary code of the query matches the facet token too.
	p = PlanSearch(listing.Query{Text: "ai"}, fulltext.Analyze("ai").WithoutPrefix())
	if len(p.Tiers) != 1 || !strings.Contains(p.All, `(facets : "`+Token(FacetSector, "ai")+`")`) {
		t.Errorf(`plan of "ai" = %+v, want a match of the sector code`, p)
	}
}
