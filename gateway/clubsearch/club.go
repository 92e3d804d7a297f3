// Package clubsearch answers club searches: this park's part through a
// LocalSearcher, each target peer asked at once with its own deadline and
// circuit breaker (only a peer's own failures count against it), the
// answers merged into one page with per-park status. It also owns the
// wire format of the federation search a peer receives.
package clubsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Limits of a peer's search answer.
const (
	maxPeerBody = 4 << 20
	// mergeReserve is kept from the budget for merging and writing the
	// answer, so the whole answer arrives within the budget.
	mergeReserve = 30 * time.Millisecond
)

// LocalSearcher searches this park's own services (localsearch.Searcher).
type LocalSearcher interface {
	// Search runs one page of q over kinds, as visibleTo may see it ("" for
	// the park's staff): the page, the next cursor, the services that
	// failed and, when q names facets, the counts.
	Search(ctx context.Context, q listing.Query, kinds []listing.Kind, visibleTo string) (*localsearch.Page, error)
}

// Peers is the park's set of active peers (peering.Store).
type Peers interface {
	List() []*peering.Peer
	Get(id string) (*peering.Peer, bool)
}

// DefaultSlowFloor is the default of Club.SlowFloor.
const DefaultSlowFloor = 500 * time.Millisecond

// Index is the club index club searches are answered from.
type Index interface {
	// Search runs one query over every park the index holds.
	Search(ctx context.Context, q listing.Query) (*listing.Page, error)
	// Freshness is how fresh park's part of the index is.
	Freshness(park string) clubindex.Freshness
	// Get returns park's listing id as the index holds it (NotFound).
	Get(ctx context.Context, park, id string) (*listing.Listing, error)
}

// Club answers club searches: from the club index, or (mode=live) by
// fanning out to this park and every active peer, each peer call with its
// own deadline and circuit breaker, and merging the answers.
type Club struct {
	Park    string
	Local   LocalSearcher
	Peers   Peers
	Keys    func() *parkkey.KeySet
	Client  *http.Client
	Cursors search.Signer
	Logger  *slog.Logger
	// BreakerOpenFor is how long an open breaker refuses calls before it
	// lets one probe through (half-open).
	BreakerOpenFor time.Duration
	// BreakerTrips is the number of consecutive failures that opens it.
	BreakerTrips uint32
	// SlowFloor is the least time a peer is given before its slowness
	// counts against it: a call whose budget is shorter (a caller's tiny
	// timeout_ms) neither trips nor closes the breaker, so no caller can
	// take a healthy park out of everyone's searches.
	SlowFloor time.Duration
	// FeedHealth, when set, adds a peer's feed health to the peers view.
	FeedHealth func(peer string) *peering.FeedHealth
	// Tracer makes the peer-call spans (nil: no spans).
	Tracer trace.Tracer
	// Index, when set, answers club searches (mode=live asks the peers).
	Index Index

	mu    sync.Mutex
	peers map[string]*peerLink
	gauge *prometheus.GaugeVec
	hist  *prometheus.HistogramVec
}

// peerLink is what the gateway keeps per peer: its breaker and health.
type peerLink struct {
	breaker     *gobreaker.CircuitBreaker
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
	lastStatus  string
}

// New returns a Club registering its metrics in reg; the caller fills in
// Park, Local, Peers, Keys, Client and Cursors.
func New(logger *slog.Logger, reg prometheus.Registerer) *Club {
	c := &Club{
		Logger: logger, BreakerOpenFor: 5 * time.Second, BreakerTrips: 3, SlowFloor: DefaultSlowFloor,
		peers: map[string]*peerLink{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parkmesh_peer_breaker_state",
			Help: "Circuit breaker state per peer: 0 closed, 1 half-open, 2 open.",
		}, []string{"peer"}),
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parkmesh_peer_request_duration_seconds",
			Help:    "Duration of federation calls to a peer, by peer and per-park status.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10},
		}, []string{"peer", "status"}),
	}
	reg.MustRegister(c.gauge, c.hist)
	return c
}

// SyncPeers drops the links of parks that are no longer peers.
func (c *Club) SyncPeers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.peers {
		if _, ok := c.Peers.Get(id); !ok {
			delete(c.peers, id)
			c.gauge.DeleteLabelValues(id)
		}
	}
}

func (c *Club) link(peer string) *peerLink {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.peers[peer]; ok {
		return l
	}
	l := &peerLink{}
	l.breaker = gobreaker.NewCircuitBreaker(gobreaker.Settings{
		Name:        peer,
		MaxRequests: 1,
		Timeout:     c.BreakerOpenFor,
		ReadyToTrip: func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= c.BreakerTrips },
		OnStateChange: func(name string, from, to gobreaker.State) {
			c.gauge.WithLabelValues(name).Set(breakerValue(to))
			c.Logger.Warn("peer breaker changed state", "peer", name, "from", from.String(), "to", to.String())
		},
	})
	c.gauge.WithLabelValues(peer).Set(0)
	c.peers[peer] = l
	return l
}

func breakerValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// PeerView is one entry of GET /api/v1/peers.
type PeerView struct {
	Park          string              `json:"park"`
	URL           string              `json:"url"`
	Health        string              `json:"health"`
	Breaker       string              `json:"breaker"`
	LastSuccess   time.Time           `json:"last_success,omitzero"`
	LastStatus    string              `json:"last_status,omitempty"`
	LastError     string              `json:"last_error,omitempty"`
	LastErrorAt   time.Time           `json:"last_error_at,omitzero"`
	KeyIDs        []string            `json:"key_ids"`
	EstablishedAt time.Time           `json:"established_at"`
	Feed          *peering.FeedHealth `json:"feed,omitempty"`
	// DisplayName and Country are the peer's identity for people (absent
	// until first read from its well-known document).
	DisplayName *peering.DisplayName `json:"display_name,omitempty"`
	Country     string               `json:"country,omitempty"`
	// Since is when the park became a member of this park's club.
	Since time.Time `json:"since"`
}

// PeerViews describes every active peer's health.
func (c *Club) PeerViews() []PeerView {
	var out []PeerView
	for _, p := range c.Peers.List() {
		l := c.link(p.ID)
		c.mu.Lock()
		v := PeerView{Park: p.ID, URL: p.URL, Breaker: l.breaker.State().String(), LastSuccess: l.lastSuccess,
			LastStatus: l.lastStatus, LastError: l.lastError, LastErrorAt: l.lastErrorAt, EstablishedAt: p.EstablishedAt,
			DisplayName: p.DisplayName, Country: p.Country, Since: p.EstablishedAt}
		c.mu.Unlock()
		for kid := range p.Keys {
			v.KeyIDs = append(v.KeyIDs, kid)
		}
		if c.FeedHealth != nil {
			v.Feed = c.FeedHealth(p.ID)
		}
		slices.Sort(v.KeyIDs)
		switch {
		case v.Breaker != "closed":
			v.Health = "unavailable"
		case v.LastStatus == "":
			v.Health = "unknown"
		case v.LastStatus == search.StatusOK:
			v.Health = "ok"
		default:
			v.Health = "degraded"
		}
		out = append(out, v)
	}
	if out == nil {
		out = []PeerView{}
	}
	return out
}

// FederationSearch is the body of POST /federation/v1/search: the query,
// in JSON, that a peer's officer asked.
type FederationSearch struct {
	Q            string   `json:"q,omitempty"`
	Sectors      []string `json:"sectors,omitempty"`
	Country      string   `json:"country,omitempty"`
	Seeking      []string `json:"seeking,omitempty"`
	Offering     []string `json:"offering,omitempty"`
	Stage        string   `json:"stage,omitempty"`
	Availability string   `json:"availability,omitempty"`
	OrgType      string   `json:"org_type,omitempty"`
	UpdatedSince string   `json:"updated_since,omitempty"`
	Kinds        []string `json:"kinds,omitempty"`
	Limit        int      `json:"limit,omitempty"`
	Cursor       string   `json:"cursor,omitempty"`
	// Facets asks for the answer's counts (listing.FacetNames). Sent only
	// when asked: a peer older than facets refuses the field (400 naming
	// facets), and is asked again without it.
	Facets []string `json:"facets,omitempty"`
}

// federationSearchOf renders a parsed search as the wire request.
func federationSearchOf(q listing.Query, kinds []listing.Kind, cursor string) FederationSearch {
	fs := FederationSearch{Q: q.Text, Sectors: q.Sectors, Country: q.Country, Seeking: q.Seeking, Offering: q.Offering,
		Stage: q.Stage, Availability: q.Availability, OrgType: q.OrgType, Limit: q.Limit, Cursor: cursor, Facets: q.Facets}
	if !q.UpdatedSince.IsZero() {
		fs.UpdatedSince = q.UpdatedSince.UTC().Format(time.RFC3339)
	}
	if len(kinds) != len(listing.Kinds) {
		for _, k := range kinds {
			fs.Kinds = append(fs.Kinds, string(k))
		}
	}
	return fs
}

// MaxFederationSearchBody bounds a federation search request.
const MaxFederationSearchBody = 64 << 10

// DecodeFederationSearch reads and validates a federation search request:
// strict JSON (unknown fields refused), at most MaxFederationSearchBody
// bytes, every value checked as the park-side search checks it. Errors are
// Invalid and name the field.
func DecodeFederationSearch(r io.Reader) (listing.Query, []listing.Kind, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFederationSearchBody+1))
	if err != nil {
		return listing.Query{}, nil, apierror.InvalidField("body", "could not be read")
	}
	if len(b) > MaxFederationSearchBody {
		return listing.Query{}, nil, apierror.InvalidField("body", "is larger than %d bytes", MaxFederationSearchBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var fs FederationSearch
	if err := dec.Decode(&fs); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return listing.Query{}, nil, apierror.InvalidField(typ.Field, "has the wrong JSON type")
		}
		if name, ok := httpjson.UnknownFieldName(err); ok {
			return listing.Query{}, nil, httpjson.UnknownField(name, "is not a search field")
		}
		return listing.Query{}, nil, apierror.InvalidField("body", "is not a JSON search request")
	}
	if dec.More() {
		return listing.Query{}, nil, apierror.InvalidField("body", "must hold exactly one JSON object")
	}
	v := map[string][]string{}
	set := func(k, val string) {
		if val != "" {
			v[k] = []string{val}
		}
	}
	set("q", fs.Q)
	set("sectors", strings.Join(fs.Sectors, ","))
	set("country", fs.Country)
	set("seeking", strings.Join(fs.Seeking, ","))
	set("offering", strings.Join(fs.Offering, ","))
	set("stage", fs.Stage)
	set("availability", fs.Availability)
	set("org_type", fs.OrgType)
	set("updated_since", fs.UpdatedSince)
	set("kinds", strings.Join(fs.Kinds, ","))
	set("cursor", fs.Cursor)
	set("facets", strings.Join(fs.Facets, ","))
	if fs.Limit != 0 {
		set("limit", fmt.Sprint(fs.Limit))
	}
	sr, err := search.ParseRequest(v)
	if err != nil {
		return listing.Query{}, nil, err
	}
	return sr.Query, sr.Kinds, nil
}

// Answer is a peer's search answer on the wire. Facets and their flags
// answer a request's facets; they are optional (older peers send none).
type Answer struct {
	Results       []*listing.Listing  `json:"results"`
	NextCursor    string              `json:"next_cursor"`
	Facets        listing.FacetCounts `json:"facets,omitempty"`
	FacetsCapped  bool                `json:"facets_capped,omitempty"`
	FacetsPartial bool                `json:"facets_partial,omitempty"`
}

// errPeerStatus carries the per-park status of a failed peer call.
type errPeerStatus struct {
	status string
	msg    string
}

func (e *errPeerStatus) Error() string { return e.status + ": " + e.msg }

// callPeer runs one page of a search at peer, through its breaker, in a
// span that names the peer, the breaker state and the per-park status.
func (c *Club) callPeer(ctx context.Context, p *peering.Peer, req FederationSearch) (ans *Answer, err error) {
	l := c.link(p.ID)
	if c.Tracer != nil {
		var span trace.Span
		ctx, span = c.Tracer.Start(ctx, "peer.search", trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(attribute.String("parkmesh.peer.id", p.ID),
				attribute.String("parkmesh.peer.breaker_state", l.breaker.State().String())))
		defer func() {
			status := search.StatusOK
			var ps *errPeerStatus
			if errors.As(err, &ps) {
				status = ps.status
			} else if err != nil {
				status = search.StatusError
			}
			span.SetAttributes(attribute.String("parkmesh.peer.status", status),
				attribute.String("parkmesh.peer.breaker_state_after", l.breaker.State().String()))
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, status)
			}
			span.End()
		}()
	}
	// Our own baggage stays in the park.
	ctx = baggage.ContextWithoutBaggage(ctx)
	if !c.givesPeerItsFloor(ctx) {
		// The caller's budget is too short to judge the peer by: ask it,
		// unless its breaker is open, and leave the breaker as it is.
		if l.breaker.State() == gobreaker.StateOpen {
			return nil, &errPeerStatus{search.StatusCircuitOpen, "circuit breaker open"}
		}
		return c.doPeerSearch(ctx, p, req)
	}
	res, err := l.breaker.Execute(func() (any, error) {
		return c.doPeerSearch(ctx, p, req)
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, &errPeerStatus{search.StatusCircuitOpen, "circuit breaker open"}
	}
	if err != nil {
		return nil, err
	}
	return res.(*Answer), nil
}

// givesPeerItsFloor reports whether ctx leaves a peer at least SlowFloor
// to answer: only then does a timeout say something about the peer rather
// than about the caller's budget.
func (c *Club) givesPeerItsFloor(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) >= c.SlowFloor
}

func (c *Club) doPeerSearch(ctx context.Context, p *peering.Peer, req FederationSearch) (*Answer, error) {
	tok, err := parktoken.IssueFederation(c.Keys(), p.ID, parktoken.ScopeSearch, time.Minute, time.Now())
	if err != nil {
		return nil, &errPeerStatus{search.StatusError, "cannot sign the request"}
	}
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(p.URL, "/")+"/federation/v1/search", bytes.NewReader(body))
	if err != nil {
		return nil, &errPeerStatus{search.StatusError, "bad peer URL"}
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.Client.Do(hreq)
	if err == nil && res.StatusCode == http.StatusBadRequest && req.Facets != nil && refusesFacets(res) {
		// A peer older than facet counts: ask again without them.
		req.Facets = nil
		return c.doPeerSearch(ctx, p, req)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, &errPeerStatus{search.StatusTimeout, "no answer within the budget"}
		}
		return nil, &errPeerStatus{search.StatusError, "unreachable"}
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		return nil, &errPeerStatus{search.StatusUnauthorized, fmt.Sprintf("peer refused our token (%d)", res.StatusCode)}
	case res.StatusCode != http.StatusOK:
		return nil, &errPeerStatus{search.StatusError, fmt.Sprintf("peer answered %d", res.StatusCode)}
	}
	if mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, &errPeerStatus{search.StatusError, "peer answered a content type other than JSON"}
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxPeerBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, &errPeerStatus{search.StatusTimeout, "answer not complete within the budget"}
		}
		return nil, &errPeerStatus{search.StatusError, "answer cut short"}
	}
	if len(b) > maxPeerBody {
		return nil, &errPeerStatus{search.StatusError, "answer larger than 4 MiB"}
	}
	var ans Answer
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&ans); err != nil || ans.Results == nil {
		return nil, &errPeerStatus{search.StatusError, "answer is not a search result"}
	}
	for _, l := range ans.Results {
		// A peer answers for itself only, with well-formed listings.
		if l == nil || l.Park != p.ID || !listing.ValidID(l.Kind, l.ID) || l.Validate(l.Kind) != nil {
			return nil, &errPeerStatus{search.StatusError, "answer holds a malformed listing or one of another park"}
		}
	}
	if err := listing.ValidateFacets(ans.Facets, "facets"); err != nil {
		return nil, &errPeerStatus{search.StatusError, "answer holds malformed facet counts"}
	}
	if req.Facets == nil {
		ans.Facets = nil // not asked (or refused): nothing to add
	}
	if len(ans.NextCursor) > 16<<10 {
		return nil, &errPeerStatus{search.StatusError, "answer holds an oversize cursor"}
	}
	return &ans, nil
}

// Search runs a club search: from the club index (one query, one ranking,
// each park's freshness reported), or with mode=live by asking this park
// and each target peer now.
func (c *Club) Search(ctx context.Context, sr search.Request) (*search.Response, error) {
	targets, err := c.targets(sr)
	if err != nil {
		return nil, err
	}
	if sr.Mode == search.ModeLive || c.Index == nil {
		return c.searchLive(ctx, sr, targets)
	}
	return c.searchIndex(ctx, sr, targets)
}

// searchIndex answers a club search from the club index: one query over
// every target park's listings, ranked together; a park whose feed is down
// delays nothing (its listings are there, marked stale).
func (c *Club) searchIndex(ctx context.Context, sr search.Request, targets []string) (*search.Response, error) {
	start := time.Now()
	q := sr.Query
	q.Parks, q.Kinds, q.CountParks = targets, sr.Kinds, true
	if len(targets) == 0 {
		resp := &search.Response{Results: []*listing.Listing{}, Parks: search.ParkSummary{Details: []search.ParkStatus{}}}
		if len(q.Facets) > 0 {
			resp.Facets = emptyFacets(q.Facets)
		}
		return resp, nil
	}
	// Freshness is read before the query: a part that turns live while it
	// runs is reported as it was when the answer's listings were read.
	fresh := make(map[string]clubindex.Freshness, len(targets))
	for _, park := range targets {
		fresh[park] = c.Index.Freshness(park)
	}
	page, err := c.Index.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	took := time.Since(start).Milliseconds()
	resp := &search.Response{Results: page.Results, NextCursor: page.NextCursor, Facets: page.Facets, FacetsCapped: page.FacetsCapped}
	for _, park := range targets {
		f := fresh[park]
		st := search.ParkStatus{Park: park, Status: f.Status, TookMS: took, Hits: page.ParkHits[park], HitsCapped: page.ParkHitsCapped, LagMS: f.LagMS}
		if !f.AsOf.IsZero() {
			asOf := f.AsOf
			st.AsOf = &asOf
		}
		if f.Status != search.StatusLive {
			resp.Partial = true
			if slices.Contains(sr.Required, park) {
				return nil, apierror.New(apierror.Unavailable, "required park %s is not live in the club index (%s); search with mode=live to ask it now", park, f.Status)
			}
		}
		resp.Parks.Add(st)
	}
	if resp.Results == nil {
		resp.Results = []*listing.Listing{}
	}
	return resp, nil
}

// targets are the parks a club search covers: this park and the active
// peers, narrowed by parks and exclude_parks; every park named must be one
// of them, and a required one must not be excluded.
func (c *Club) targets(sr search.Request) ([]string, error) {
	targets := []string{c.Park}
	for _, p := range c.Peers.List() {
		targets = append(targets, p.ID)
	}
	known := map[string]bool{}
	for _, t := range targets {
		known[t] = true
	}
	for _, field := range []struct {
		name string
		ids  []string
	}{{"parks", sr.Parks}, {"exclude_parks", sr.Exclude}, {"required", sr.Required}} {
		for _, id := range field.ids {
			if !known[id] {
				return nil, apierror.InvalidField(field.name, "%q is neither this park nor an active peer", id)
			}
		}
	}
	if sr.Parks != nil {
		targets = slices.DeleteFunc(targets, func(t string) bool { return !slices.Contains(sr.Parks, t) })
	}
	targets = slices.DeleteFunc(targets, func(t string) bool { return slices.Contains(sr.Exclude, t) })
	for _, req := range sr.Required {
		if !slices.Contains(targets, req) {
			return nil, apierror.InvalidField("required", "%q is excluded from the search", req)
		}
	}
	return targets, nil
}

// searchLive runs a club search by asking this park and each target peer
// concurrently, each within the budget, merged by interleaving their
// ranks.
func (c *Club) searchLive(ctx context.Context, sr search.Request, targets []string) (*search.Response, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, sr.Budget)
	defer cancel()
	callCtx, callCancel := context.WithTimeout(ctx, max(sr.Budget-mergeReserve, sr.Budget/2))
	defer callCancel()

	limit := sr.Query.Limit
	if limit == 0 {
		limit = listing.DefaultLimit
	}
	qh := search.QueryHash(sr.Query, search.ScopeClub, search.ModeLive, search.KindsKey(sr.Kinds), strings.Join(targets, ","))
	state := map[string]search.SourceState{}
	if sr.Query.Cursor != "" {
		mc, err := c.Cursors.Decode(sr.Query.Cursor, qh)
		if err != nil {
			return nil, err
		}
		state = mc.Sources
	}

	pages := make([]search.SourcePage, len(targets))
	statuses := make([]search.ParkStatus, len(targets))
	// Each park's counts, summed after the calls; a park whose results ran
	// out on an earlier page is still asked (one result from the start)
	// when counts are wanted.
	type parkFacets struct {
		counts          listing.FacetCounts
		capped, partial bool
	}
	facets := make([]parkFacets, len(targets))
	wantFacets := len(sr.Query.Facets) > 0
	var wg sync.WaitGroup
	for i, park := range targets {
		pages[i].Name = park
		st := state[park]
		statuses[i] = search.ParkStatus{Park: park, Status: search.StatusOK}
		if st.Done {
			if !wantFacets {
				continue
			}
			st.Cursor = ""
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			q := sr.Query
			q.Limit = limit
			if st.Done {
				q.Limit = 1
			}
			var results []*listing.Listing
			var next string
			var err error
			if park == c.Park {
				q.Cursor = st.Cursor
				var page *localsearch.Page
				page, err = c.Local.Search(callCtx, q, sr.Kinds, "")
				if err == nil {
					results, next = page.Results, page.Next
					facets[i] = parkFacets{page.Facets, page.FacetsCapped, page.FacetsPartial}
					if len(page.Failures) > 0 {
						err = &errPeerStatus{search.StatusError, strings.Join(page.Failures, "; ")}
					}
				}
			} else {
				p, ok := c.Peers.Get(park)
				if !ok {
					err = &errPeerStatus{search.StatusError, "no longer a peer"}
				} else {
					var ans *Answer
					ans, err = c.callPeer(callCtx, p, federationSearchOf(q, sr.Kinds, st.Cursor))
					if err == nil {
						results, next = ans.Results, ans.NextCursor
						// An older peer sends no counts: partial, not zero.
						facets[i] = parkFacets{ans.Facets, ans.FacetsCapped, ans.FacetsPartial || wantFacets && ans.Facets == nil}
					}
				}
			}
			took := time.Since(t0)
			if st.Done {
				// Asked for its counts only: a failure costs the counts,
				// not the page (the park's results are all returned).
				if err != nil {
					facets[i] = parkFacets{partial: true}
				}
				statuses[i].TookMS = took.Milliseconds()
				return
			}
			status := search.ParkStatus{Park: park, Status: search.StatusOK, TookMS: took.Milliseconds(), Hits: len(results)}
			if err != nil {
				pages[i].Failed = true
				var ps *errPeerStatus
				if errors.As(err, &ps) {
					status.Status, status.Error = ps.status, ps.msg
				} else if callCtx.Err() != nil {
					status.Status, status.Error = search.StatusTimeout, "no answer within the budget"
				} else {
					status.Status, status.Error = search.StatusError, apierror.Public(err).Message
				}
				status.Hits = 0
				facets[i] = parkFacets{partial: wantFacets}
			} else {
				pages[i].Results, pages[i].Next = results, next
			}
			statuses[i] = status
			if park != c.Park {
				c.hist.WithLabelValues(park, status.Status).Observe(took.Seconds())
				c.record(park, status)
			}
		}()
	}
	wg.Wait()

	resp := &search.Response{}
	for _, st := range statuses {
		resp.Parks.Add(st)
		if st.Status != search.StatusOK {
			resp.Partial = true
			if slices.Contains(sr.Required, st.Park) {
				return nil, apierror.New(apierror.Unavailable, "required park %s did not answer: %s (%s)", st.Park, st.Status, st.Error)
			}
		}
	}
	if resp.Parks.Details == nil {
		resp.Parks.Details = []search.ParkStatus{} // every park excluded: still a list
	}
	if wantFacets {
		resp.Facets = emptyFacets(sr.Query.Facets)
		for _, f := range facets {
			resp.Facets.Add(f.counts)
			resp.FacetsCapped = resp.FacetsCapped || f.capped
			resp.FacetsPartial = resp.FacetsPartial || f.partial
		}
	}
	results, next := search.Merge(pages, state, limit)
	if results == nil {
		results = []*listing.Listing{}
	}
	resp.Results = results
	if next != nil {
		resp.NextCursor = c.Cursors.Encode(search.Cursor{Query: qh, Sources: next})
	}
	c.Logger.DebugContext(ctx, "club search", "parks", len(targets), "took_ms", time.Since(start).Milliseconds(), "partial", resp.Partial)
	return resp, nil
}

func (c *Club) record(peer string, st search.ParkStatus) {
	l := c.link(peer)
	c.mu.Lock()
	defer c.mu.Unlock()
	l.lastStatus = st.Status
	if st.Status == search.StatusOK {
		l.lastSuccess = time.Now().UTC()
	} else {
		l.lastError, l.lastErrorAt = st.Error, time.Now().UTC()
	}
}

// emptyFacets is counts of the facets named, none counted yet.
func emptyFacets(names []string) listing.FacetCounts {
	c := listing.FacetCounts{}
	for _, n := range names {
		c[n] = map[string]int{}
	}
	return c
}

// refusesFacets reports whether a peer's 400 answer refuses the facets
// field of a search request (a peer older than facet counts), reading at
// most 4 KiB of its error body. The body is closed.
func refusesFacets(res *http.Response) bool {
	defer res.Body.Close()
	var e struct {
		Error struct {
			Field string `json:"field"`
		} `json:"error"`
	}
	return json.NewDecoder(io.LimitReader(res.Body, 4<<10)).Decode(&e) == nil && e.Error.Field == "facets"
}
