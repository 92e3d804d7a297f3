package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
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

// searchRequest is a parsed search: the service query plus what the
// gateway itself decides (kinds, scope, parks, budget).
type searchRequest struct {
	Query    listing.Query
	Kinds    []listing.Kind
	Scope    string // "local" or "club"
	Parks    []string
	Exclude  []string
	Required []string
	Budget   time.Duration
}

// searchParams are the search parameters beyond a service query.
var searchParams = []string{"scope", "kinds", "parks", "exclude_parks", "required", "timeout_ms"}

func parkList(v url.Values, name string) ([]string, error) {
	s := v.Get(name)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 100 {
		return nil, apierror.InvalidField(name, "names more than 100 parks")
	}
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if !listing.ValidParkID(parts[i]) {
			return nil, apierror.InvalidField(name, "%q is not a park id", clip(parts[i]))
		}
	}
	return parts, nil
}

// parseSearch reads a search from URL parameters. A filter that belongs to
// one kind (stage, availability, org_type) narrows the search to that kind.
func parseSearch(v url.Values) (searchRequest, error) {
	var sr searchRequest
	q, err := listing.ParseQuery(v, "", searchParams...)
	if err != nil {
		return sr, err
	}
	if q.VisibleTo != "" {
		return sr, apierror.InvalidField("visible_to", "is not a search parameter here")
	}
	sr.Query = q
	switch s := v.Get("scope"); s {
	case "", "local":
		sr.Scope = "local"
	case "club":
		sr.Scope = "club"
	default:
		return sr, apierror.InvalidField("scope", "must be local or club")
	}
	sr.Kinds = listing.Kinds
	if s := v.Get("kinds"); s != "" {
		sr.Kinds = nil
		for _, p := range strings.Split(s, ",") {
			k, ok := kindPaths[p]
			if !ok {
				k = listing.Kind(p)
			}
			if !k.Valid() {
				return sr, apierror.InvalidField("kinds", "%q is not organizations, projects or talent", clip(p))
			}
			sr.Kinds = append(sr.Kinds, k)
		}
	}
	narrow := func(set bool, only listing.Kind) {
		if !set {
			return
		}
		var out []listing.Kind
		for _, k := range sr.Kinds {
			if k == only {
				out = append(out, k)
			}
		}
		sr.Kinds = out
	}
	narrow(q.Stage != "", listing.KindProject)
	narrow(q.Availability != "", listing.KindTalent)
	narrow(q.OrgType != "", listing.KindOrganization)
	if sr.Parks, err = parkList(v, "parks"); err != nil {
		return sr, err
	}
	if sr.Exclude, err = parkList(v, "exclude_parks"); err != nil {
		return sr, err
	}
	if sr.Required, err = parkList(v, "required"); err != nil {
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
	if sr.Scope == "local" && (sr.Parks != nil || sr.Exclude != nil || sr.Required != nil) {
		return sr, apierror.InvalidField("scope", "parks, exclude_parks and required need scope=club")
	}
	return sr, nil
}

// kindsKey names a kind set in cursor hashes.
func kindsKey(kinds []listing.Kind) string {
	var names []string
	for _, k := range kinds {
		names = append(names, string(k))
	}
	return strings.Join(names, ",")
}

// localSearch runs one page of q over the park's own services, each kind a
// source, merged by reciprocal rank fusion. visibleTo, when set, keeps only
// what that peer may see. It returns the page, the next cursor and the
// services that failed (the page is then partial).
func (a *API) localSearch(ctx context.Context, q listing.Query, kinds []listing.Kind, visibleTo string) ([]*listing.Listing, string, []string, error) {
	limit := q.Limit
	if limit == 0 {
		limit = listing.DefaultLimit
	}
	q.VisibleTo = visibleTo
	qh := queryHash(q, "local", kindsKey(kinds))
	state := map[string]sourceState{}
	if q.Cursor != "" {
		c, err := a.Cursors.decode(q.Cursor, qh)
		if err != nil {
			return nil, "", nil, err
		}
		state = c.Sources
	}
	pages := make([]sourcePage, len(kinds))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for i, k := range kinds {
		pages[i].Name = string(k)
		st := state[string(k)]
		if st.Done {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sq := q
			sq.Cursor, sq.Limit = st.Cursor, limit
			if k != listing.KindProject {
				sq.Stage = ""
			}
			if k != listing.KindTalent {
				sq.Availability = ""
			}
			if k != listing.KindOrganization {
				sq.OrgType = ""
			}
			page, err := a.searchService(ctx, k, sq)
			if err != nil {
				pages[i].Failed = true
				mu.Lock()
				failures = append(failures, apierror.Public(err).Message)
				mu.Unlock()
				return
			}
			pages[i].Results, pages[i].Next = page.Results, page.NextCursor
		}()
	}
	wg.Wait()
	results, next := merge(pages, state, limit)
	if results == nil {
		results = []*listing.Listing{}
	}
	cursor := ""
	if next != nil {
		cursor = a.Cursors.encode(mergeCursor{Query: qh, Sources: next})
	}
	return results, cursor, failures, nil
}

// search answers GET /api/v1/search: scope local (the park's services) or
// club (this park and its peers, see club.go).
func (a *API) search(w http.ResponseWriter, r *http.Request) {
	sr, err := parseSearch(r.URL.Query())
	if err != nil {
		apierror.Write(w, err)
		return
	}
	if sr.Scope == "club" {
		if a.Club == nil {
			apierror.Write(w, apierror.InvalidField("scope", "club search is not enabled on this gateway"))
			return
		}
		resp, err := a.Club.Search(r.Context(), sr)
		if err != nil {
			apierror.Write(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout())
	defer cancel()
	start := time.Now()
	results, next, failures, err := a.localSearch(ctx, sr.Query, sr.Kinds, "")
	if err != nil {
		apierror.Write(w, err)
		return
	}
	resp := SearchResponse{Results: results, NextCursor: next}
	st := ParkStatus{Park: a.Park, Status: StatusOK, TookMS: time.Since(start).Milliseconds(), Hits: len(results)}
	if len(failures) > 0 {
		st.Status, st.Error = StatusError, strings.Join(failures, "; ")
		resp.Partial = true
	}
	resp.Parks.add(st)
	writeJSON(w, http.StatusOK, resp)
}

// queryHash binds a cursor to its query: the filters (not the page) and
// whatever else decides the sources (scope, kinds, parks).
func queryHash(q listing.Query, extra ...string) string {
	q.Cursor, q.Limit = "", 0
	h := sha256.New()
	h.Write([]byte(q.Values().Encode()))
	for _, e := range extra {
		h.Write([]byte{0})
		h.Write([]byte(e))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
