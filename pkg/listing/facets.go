package listing

import (
	"slices"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// Facets a search can count, as the facets parameter names them: each
// counts the query's matches per value of one field (sector, seeking and
// offering per value held, so a listing with two sectors counts in both).
const (
	FacetSector       = "sector"
	FacetCountry      = "country"
	FacetKind         = "kind"
	FacetSeeking      = "seeking"
	FacetOffering     = "offering"
	FacetStage        = "stage"        // projects
	FacetAvailability = "availability" // talent
	FacetOrgType      = "org_type"     // organizations
)

// FacetNames are every facet, in the order answers list them.
var FacetNames = []string{FacetSector, FacetCountry, FacetKind, FacetSeeking, FacetOffering, FacetStage, FacetAvailability, FacetOrgType}

// MaxFacetValues bounds the values one facet may report in an answer read
// from another process (the most is country: ISO 3166-1 has 249 codes).
const MaxFacetValues = 300

// FacetCounts are a search's counts: facet name → value → number of
// matches holding that value. Values without a match are absent.
type FacetCounts map[string]map[string]int

// Add adds o's counts to c, making c's facets as needed.
func (c FacetCounts) Add(o FacetCounts) {
	for f, vals := range o {
		m := c[f]
		if m == nil {
			m = map[string]int{}
			c[f] = m
		}
		for v, n := range vals {
			m[v] += n
		}
	}
}

// ParseFacets reads the facets parameter: a comma-separated list of facet
// names, or "all". Errors are Invalid and name field.
func ParseFacets(s, field string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if s == "all" {
		return slices.Clone(FacetNames), nil
	}
	want := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if !IsFacet(p) {
			return nil, apierror.InvalidField(field, "%q is not a facet; facets are all or any of %s", clip(p), strings.Join(FacetNames, ", "))
		}
		want[p] = true
	}
	var out []string
	for _, f := range FacetNames {
		if want[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

// IsFacet reports whether name is one of FacetNames.
func IsFacet(name string) bool {
	for _, f := range FacetNames {
		if f == name {
			return true
		}
	}
	return false
}

// ValidateFacets checks counts read from another process (a service, a
// peer): known facets only, at most MaxFacetValues values each, values
// short and non-empty, counts not negative. Errors are Invalid and name
// field.
func ValidateFacets(c FacetCounts, field string) error {
	for f, vals := range c {
		if !IsFacet(f) {
			return apierror.InvalidField(field, "%q is not a facet", clip(f))
		}
		if len(vals) > MaxFacetValues {
			return apierror.InvalidField(field+"."+f, "has more than %d values", MaxFacetValues)
		}
		for v, n := range vals {
			if v == "" || len(v) > 64 || n < 0 {
				return apierror.InvalidField(field+"."+f, "holds a malformed count")
			}
		}
	}
	return nil
}
