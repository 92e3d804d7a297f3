// Package search holds what every gateway search shares, local or across
// the club: the parsed request and its limits, the answer with per-park
// status (as Elasticsearch's _clusters reports), the merge of several
// ranked sources into one page, and the signed cursor that pages through
// a merge. It is pure logic: no I/O.
package search

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Search budget bounds (timeout_ms).
const (
	DefaultBudget = 2 * time.Second
	MinBudget     = 50 * time.Millisecond
	MaxBudget     = 10 * time.Second
)

// Scopes of a search.
const (
	ScopeLocal = "local"
	ScopeClub  = "club"
)

// Request is a parsed search: the service query plus what the gateway
// itself decides (kinds, scope, parks, budget).
type Request struct {
	Query    listing.Query
	Kinds    []listing.Kind
	Scope    string // ScopeLocal or ScopeClub
	Parks    []string
	Exclude  []string
	Required []string
	Budget   time.Duration
	// Mode is how a club search is answered: ModeIndex (from the club
	// index) or ModeLive (asking every target peer now).
	Mode string
}

// Club search modes.
const (
	ModeIndex = "index"
	ModeLive  = "live"
)

// params are the search parameters beyond a service query.
var params = []string{"scope", "kinds", "parks", "exclude_parks", "required", "timeout_ms", "mode"}

// ParseRequest reads a search from URL parameters. A filter that belongs
// to one kind (stage, availability, org_type) narrows the search to that
// kind. Errors are Invalid and name the parameter.
func ParseRequest(v url.Values) (Request, error) {
	var sr Request
	q, err := listing.ParseQuery(v, "", params...)
	if err != nil {
		return sr, err
	}
	if q.VisibleTo != "" {
		return sr, apierror.InvalidField("visible_to", "is not a search parameter here")
	}
	sr.Query = q
	switch s := v.Get("scope"); s {
	case "", ScopeLocal:
		sr.Scope = ScopeLocal
	case ScopeClub:
		sr.Scope = ScopeClub
	default:
		return sr, apierror.InvalidField("scope", "must be local or club")
	}
	sr.Kinds = listing.Kinds
	if s := v.Get("kinds"); s != "" {
		if sr.Kinds, err = listing.ParseKinds(s, "kinds"); err != nil {
			return sr, err
		}
	}
	// A filter of one kind narrows the search to it; one that leaves no
	// kind at all is a mistake the officer should hear about, not an
	// empty answer (nor a wider one at the peers).
	for _, f := range []struct {
		field string
		set   bool
		only  listing.Kind
	}{{"stage", q.Stage != "", listing.KindProject}, {"availability", q.Availability != "", listing.KindTalent}, {"org_type", q.OrgType != "", listing.KindOrganization}} {
		if !f.set {
			continue
		}
		if !slices.Contains(sr.Kinds, f.only) {
			return sr, apierror.InvalidField(f.field, "applies to %s only, which the search's kinds exclude", f.only.Collection())
		}
		sr.Kinds = []listing.Kind{f.only}
	}
	if sr.Parks, err = listing.ParseParks(v, "parks"); err != nil {
		return sr, err
	}
	if sr.Exclude, err = listing.ParseParks(v, "exclude_parks"); err != nil {
		return sr, err
	}
	if sr.Required, err = listing.ParseParks(v, "required"); err != nil {
		return sr, err
	}
	sr.Budget = DefaultBudget
	if s := v.Get("timeout_ms"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < int(MinBudget/time.Millisecond) || n > int(MaxBudget/time.Millisecond) {
			return sr, apierror.InvalidField("timeout_ms", "must be an integer between %d and %d", MinBudget/time.Millisecond, MaxBudget/time.Millisecond)
		}
		sr.Budget = time.Duration(n) * time.Millisecond
	}
	switch m := v.Get("mode"); m {
	case "", ModeIndex:
		sr.Mode = ModeIndex
	case ModeLive:
		sr.Mode = ModeLive
	default:
		return sr, apierror.InvalidField("mode", "must be index or live")
	}
	if sr.Scope == ScopeLocal && sr.Mode == ModeLive {
		return sr, apierror.InvalidField("mode", "live needs scope=club")
	}
	if sr.Scope == ScopeLocal && (sr.Parks != nil || sr.Exclude != nil || sr.Required != nil) {
		return sr, apierror.InvalidField("scope", "parks, exclude_parks and required need scope=club")
	}
	return sr, nil
}

// KindsKey names a kind set in cursor hashes.
func KindsKey(kinds []listing.Kind) string {
	var names []string
	for _, k := range kinds {
		names = append(names, string(k))
	}
	return strings.Join(names, ",")
}

// QueryHash binds a cursor to its query: the filters (not the page) and
// whatever else decides the sources (scope, kinds, parks). Facets change
// no result: a cursor serves the query with or without them.
func QueryHash(q listing.Query, extra ...string) string {
	q.Cursor, q.Limit, q.Facets = "", 0, nil
	h := sha256.New()
	h.Write([]byte(q.Values().Encode()))
	for _, e := range extra {
		h.Write([]byte{0})
		h.Write([]byte(e))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Response is the answer of a search across sources.
type Response struct {
	Results    []*listing.Listing `json:"results"`
	NextCursor string             `json:"next_cursor"`
	Partial    bool               `json:"partial"`
	Parks      ParkSummary        `json:"parks"`
	// Facets, when the request named some (facets=…), count every match
	// of the query per value of each facet, whatever the page.
	Facets listing.FacetCounts `json:"facets,omitempty"`
	// FacetsCapped: some source counted only its newest matches (a store
	// reads at most sqlitestore.DefaultFacetScan), so counts are lower
	// bounds. FacetsPartial: some source that should have counted did not
	// (it failed, or an older peer answered without counts).
	FacetsCapped  bool `json:"facets_capped,omitempty"`
	FacetsPartial bool `json:"facets_partial,omitempty"`
}

// ParkSummary reports, as Elasticsearch's _clusters does, how each park
// answered: totals by status and one entry per park. A search from the
// club index counts live, stale and syncing parts; a live one (and a
// local one) the answers: ok, timeout, circuit_open, unauthorized, error.
type ParkSummary struct {
	Total        int          `json:"total"`
	Live         int          `json:"live"`
	Stale        int          `json:"stale"`
	Syncing      int          `json:"syncing"`
	OK           int          `json:"ok"`
	Timeout      int          `json:"timeout"`
	CircuitOpen  int          `json:"circuit_open"`
	Unauthorized int          `json:"unauthorized"`
	Error        int          `json:"error"`
	Details      []ParkStatus `json:"details"`
}

// ParkStatus is how one park answered a search.
type ParkStatus struct {
	Park   string `json:"park"`
	Status string `json:"status"`
	TookMS int64  `json:"took_ms"`
	Hits   int    `json:"hits"`
	// HitsCapped: the club index counted only the search's newest
	// matches (sqlitestore.DefaultFacetScan across every park asked), so
	// Hits is a lower bound.
	HitsCapped bool   `json:"hits_capped,omitempty"`
	Error      string `json:"error,omitempty"`
	// AsOf is when the park's part of the club index was last known
	// complete (index searches; absent while syncing).
	AsOf *time.Time `json:"as_of,omitempty"`
	// LagMS is the delay of the last change that arrived from the park.
	LagMS int64 `json:"lag_ms"`
}

// Park statuses.
const (
	StatusOK           = "ok"
	StatusTimeout      = "timeout"
	StatusCircuitOpen  = "circuit_open"
	StatusUnauthorized = "unauthorized"
	StatusError        = "error"
	// Freshness of a park's part of the club index.
	StatusLive    = "live"
	StatusStale   = "stale"
	StatusSyncing = "syncing"
)

// Add counts p and lists it.
func (s *ParkSummary) Add(p ParkStatus) {
	s.Total++
	switch p.Status {
	case StatusOK:
		s.OK++
	case StatusTimeout:
		s.Timeout++
	case StatusCircuitOpen:
		s.CircuitOpen++
	case StatusUnauthorized:
		s.Unauthorized++
	case StatusLive:
		s.Live++
	case StatusStale:
		s.Stale++
	case StatusSyncing:
		s.Syncing++
	default:
		s.Error++
	}
	s.Details = append(s.Details, p)
}
