package listing

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// MaxQueryText bounds the free-text part of a query, in characters.
const MaxQueryText = 200

// queryParams are the parameters ParseQuery knows; any other is refused so
// a typo ("sector=ai") never silently widens a search.
var queryParams = map[string]bool{
	"q": true, "sectors": true, "country": true, "seeking": true, "offering": true,
	"stage": true, "availability": true, "org_type": true, "updated_since": true,
	"visible_to": true, "limit": true, "cursor": true, "facets": true,
}

// ParseQuery reads a search query from URL parameters for a service of kind
// k (kind "" accepts every kind-specific filter, as the gateway does).
// Lists are comma-separated. Errors are Invalid and name the parameter.
func ParseQuery(v url.Values, k Kind, extra ...string) (Query, error) {
	var q Query
	allowed := func(name string) bool {
		for _, e := range extra {
			if e == name {
				return true
			}
		}
		return queryParams[name]
	}
	for name, vals := range v {
		if !allowed(name) {
			return q, apierror.InvalidField(clip(name), "is not a search parameter")
		}
		if len(vals) > 1 {
			return q, apierror.InvalidField(name, "is given more than once; use a comma-separated list")
		}
	}
	q.Text = strings.TrimSpace(v.Get("q"))
	if !utf8.ValidString(q.Text) {
		return q, apierror.InvalidField("q", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(q.Text); n > MaxQueryText {
		return q, apierror.InvalidField("q", "is %d characters long, the limit is %d", n, MaxQueryText)
	}
	var err error
	if q.Sectors, err = vocabParam(v, "sectors", Sectors); err != nil {
		return q, err
	}
	if q.Seeking, err = vocabParam(v, "seeking", Needs); err != nil {
		return q, err
	}
	if q.Offering, err = vocabParam(v, "offering", Needs); err != nil {
		return q, err
	}
	if c := v.Get("country"); c != "" {
		q.Country = strings.ToUpper(c)
		if !ValidCountry(q.Country) {
			return q, apierror.InvalidField("country", "must be an ISO 3166-1 alpha-2 code")
		}
	}
	kindFilter := func(name string, owner Kind, voc Vocabulary) (string, error) {
		val := v.Get(name)
		if val == "" {
			return "", nil
		}
		if k != "" && k != owner {
			return "", apierror.InvalidField(name, "filters %s listings, not %s", owner, k)
		}
		if !voc.Has(val) {
			return "", apierror.InvalidField(name, "must be one of %s", strings.Join(voc, ", "))
		}
		return val, nil
	}
	if q.Stage, err = kindFilter("stage", KindProject, Stages); err != nil {
		return q, err
	}
	if q.Availability, err = kindFilter("availability", KindTalent, Availabilities); err != nil {
		return q, err
	}
	if q.OrgType, err = kindFilter("org_type", KindOrganization, OrgTypes); err != nil {
		return q, err
	}
	if s := v.Get("updated_since"); s != "" {
		if q.UpdatedSince, err = time.Parse(time.RFC3339, s); err != nil {
			return q, apierror.InvalidField("updated_since", "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
	}
	if p := v.Get("visible_to"); p != "" {
		if !ValidParkID(p) {
			return q, apierror.InvalidField("visible_to", "must be a park id")
		}
		q.VisibleTo = p
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return q, apierror.InvalidField("limit", "must be an integer between 1 and %d", MaxLimit)
		}
		q.Limit = n
	}
	if q.Facets, err = ParseFacets(v.Get("facets"), "facets"); err != nil {
		return q, err
	}
	q.Cursor = v.Get("cursor")
	return q, nil
}

func vocabParam(v url.Values, name string, voc Vocabulary) ([]string, error) {
	s := v.Get(name)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxListLen {
		return nil, apierror.InvalidField(name, "has more than %d values", MaxListLen)
	}
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if !voc.Has(parts[i]) {
			return nil, apierror.InvalidField(name, "%q is not one of %s", clip(parts[i]), strings.Join(voc, ", "))
		}
	}
	return parts, nil
}

// Values renders q as URL parameters, the inverse of ParseQuery.
func (q Query) Values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("q", q.Text)
	set("sectors", strings.Join(q.Sectors, ","))
	set("country", q.Country)
	set("seeking", strings.Join(q.Seeking, ","))
	set("offering", strings.Join(q.Offering, ","))
	set("stage", q.Stage)
	set("availability", q.Availability)
	set("org_type", q.OrgType)
	if !q.UpdatedSince.IsZero() {
		set("updated_since", q.UpdatedSince.UTC().Format(time.RFC3339))
	}
	set("visible_to", q.VisibleTo)
	if q.Limit > 0 {
		set("limit", strconv.Itoa(q.Limit))
	}
	set("cursor", q.Cursor)
	set("facets", strings.Join(q.Facets, ","))
	return v
}
