package ftsdoc

import (
	"fmt"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/fulltext"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Plan is how a query reads the store: one FTS5 MATCH expression per
// ranking tier, or, when the index has nothing to narrow (no text, no facet
// filter), a single tier "" that walks the listings table with Columns
// (extra SQL conditions on park and kind) and their ColumnArgs.
type Plan struct {
	Tiers      []string
	All        string // MATCH of every hit of every tier ("" for a table walk)
	Columns    string
	ColumnArgs []any
	// Text is the analysed query of a text search (nil without text):
	// Tiers are then the candidate tiers of the ranked window, strictest
	// first, the last (loosest) one being All. No tier at all means
	// nothing the index can match: an empty answer.
	Text *fulltext.Query
}

// PlanSearch plans q, whose text aq is (fulltext.Analyze of q.Text, its
// prefix dropped when the store holds the word).
func PlanSearch(q listing.Query, aq fulltext.Query) Plan {
	var filters []string
	anyOf := func(f Facet, vs ...string) {
		if toks := facetTokens(f, vs); toks != "" {
			filters = append(filters, toks)
		}
	}
	anyOf(FacetSector, q.Sectors...)
	anyOf(FacetCountry, q.Country)
	anyOf(FacetSeeking, q.Seeking...)
	anyOf(FacetOffering, q.Offering...)
	anyOf(FacetStage, q.Stage)
	anyOf(FacetAvailability, q.Availability)
	anyOf(FacetOrgType, q.OrgType)
	if q.VisibleTo != "" {
		// club, or peers shared with the caller; never private.
		filters = append(filters, fmt.Sprintf(`(facets : ("%s" OR ("%s" AND "%s")))`,
			Token(FacetVisibility, string(listing.Club)),
			Token(FacetVisibility, string(listing.Peers)), Token(FacetShareWith, q.VisibleTo)))
	}
	kinds := make([]string, len(q.Kinds))
	for i, k := range q.Kinds {
		kinds[i] = string(k)
	}
	if len(aq.Concepts) == 0 && len(filters) == 0 {
		var p Plan
		in := func(col, op string, vs []string) {
			var marks []string
			for _, v := range vs {
				if v != "" {
					marks = append(marks, "?")
					p.ColumnArgs = append(p.ColumnArgs, v)
				}
			}
			if len(marks) > 0 {
				// Unary + keeps SQLite from reading through the (park, id)
				// index and sorting: the walk must stream newest first.
				p.Columns += " AND +" + col + " " + op + " (" + strings.Join(marks, ", ") + ")"
			}
		}
		in("park", "IN", q.Parks)
		in("park", "NOT IN", q.ExcludeParks)
		in("kind", "IN", kinds)
		p.Tiers = []string{""}
		return p
	}
	anyOf(FacetPark, q.Parks...)
	anyOf(FacetKind, kinds...)
	excluded := facetTokens(FacetPark, q.ExcludeParks)
	match := func(parts ...string) string {
		m := strings.Join(parts, " AND ")
		if excluded != "" {
			m = "(" + m + ") NOT " + excluded
		}
		return m
	}
	if len(aq.Concepts) == 0 {
		m := match(filters...)
		return Plan{Tiers: []string{m}, All: m}
	}
	// Candidate tiers: every concept anywhere (a vocabulary code counting
	// as a match), then enough of them anywhere. A tier of title matches
	// first was measured and dropped: a column filter makes FTS5 read the
	// positions of every hit it skips (3–18 ms for a common word at 100k
	// listings); the score puts title matches first within the window.
	var anywhere []string
	for _, c := range aq.Concepts {
		if e := fulltext.FTS5Concept(c, []string{"title", "body"}, codeMatch); e != "" {
			anywhere = append(anywhere, e)
		}
	}
	p := Plan{Text: &aq}
	if len(anywhere) == 0 {
		return p // nothing the index can match: no tiers, an empty answer
	}
	p.Tiers = append(p.Tiers, match(append([]string{fulltext.FTS5AtLeast(anywhere, len(anywhere))}, filters...)...))
	if k := min(aq.MinConcepts, len(anywhere)); k < len(anywhere) {
		p.Tiers = append(p.Tiers, match(append([]string{fulltext.FTS5AtLeast(anywhere, k)}, filters...)...))
	}
	p.All = p.Tiers[len(p.Tiers)-1]
	return p
}

// codeFacets maps the vocabulary fields of pkg/fulltext's dictionary to
// their facets.
var codeFacets = map[string]Facet{
	"sector": FacetSector, "seeking": FacetSeeking, "offering": FacetOffering,
	"org_type": FacetOrgType, "stage": FacetStage, "availability": FacetAvailability,
}

// codeMatch renders a vocabulary code of a query concept as a facet match.
func codeMatch(field, value string) string {
	f, ok := codeFacets[field]
	if !ok || value == "" {
		return ""
	}
	return `(facets : "` + Token(f, value) + `")`
}

// facetTokens is the MATCH expression for "any of vs" in facet f, or ""
// when vs holds no value.
func facetTokens(f Facet, vs []string) string {
	var toks []string
	for _, v := range vs {
		if v != "" {
			toks = append(toks, `"`+Token(f, v)+`"`)
		}
	}
	if len(toks) == 0 {
		return ""
	}
	return "(facets : (" + strings.Join(toks, " OR ") + "))"
}
