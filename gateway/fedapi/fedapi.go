// Package fedapi serves the federation side of the gateway, the only port
// peers reach: the park's well-known identity and keys, the peering
// handshake, live search, single listings and the changes feed. Every
// route but the well-known documents and the handshake needs a federation
// token of an active peer for the route's scope.
package fedapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/interests"
	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Listings reads one listing of the park's services.
type Listings interface {
	// Get returns listing id of kind k; NotFound when there is none.
	Get(ctx context.Context, k listing.Kind, id string) (*listing.Listing, error)
}

// API serves the federation side: what peer gateways call.
type API struct {
	Peering  *peering.Federation
	Verifier *parktoken.FederationVerifier
	Local    *localsearch.Searcher
	Listings Listings
	Logger   *slog.Logger
	// AuthFailures counts refused tokens by reason (may be nil).
	AuthFailures func(reason string)
	// Limited counts requests refused by a cap, by cap (may be nil).
	Limited func(limit string)
	// Timeout bounds the work for one federation request.
	Timeout time.Duration
	// Feed is the park's change feed; FeedOptions tune its streams.
	Feed        *feed.Local
	FeedOptions feed.Options
	// StreamCaps bounds the changes streams each peer holds open.
	StreamCaps sse.Caps
	// MaxPendingEstablish bounds the peering handshakes in progress at
	// once (the endpoint needs no credential); 0 means 4.
	MaxPendingEstablish int
	// Interests, when set, takes peers' expressions of interest and
	// their status changes.
	Interests *interests.Service

	pendingOnce sync.Once
	pending     chan struct{}

	mu      sync.Mutex
	streams map[string]map[*int]context.CancelFunc // open feed streams by peer
}

// PeersChanged closes at once every open feed stream of a park that is no
// longer an active peer. The composition root calls it on every change of
// the peer set, which every replica watches in Consul, so deleting a
// peering through any replica ends its streams on all of them.
func (f *API) PeersChanged() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for peer, open := range f.streams {
		if _, ok := f.Peering.Peers.Get(peer); ok {
			continue
		}
		for _, cancel := range open {
			cancel()
		}
		delete(f.streams, peer)
		f.Logger.Info("closed the open feed streams of a removed peer", "peer", peer, "streams", len(open))
	}
}

// track registers an open stream of peer; the function returned forgets it.
func (f *API) track(peer string, cancel context.CancelFunc) (untrack func()) {
	key := new(int)
	f.mu.Lock()
	if f.streams == nil {
		f.streams = map[string]map[*int]context.CancelFunc{}
	}
	if f.streams[peer] == nil {
		f.streams[peer] = map[*int]context.CancelFunc{}
	}
	f.streams[peer][key] = cancel
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.streams[peer], key)
		if len(f.streams[peer]) == 0 {
			delete(f.streams, peer)
		}
		f.mu.Unlock()
	}
}

type handler func(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims)

// Routes registers the federation side on mux.
func (f *API) Routes(mux *http.ServeMux, mw func(string, http.Handler) http.Handler) {
	handle := func(pattern string, h http.Handler) { mux.Handle(pattern, mw(pattern, h)) }
	handle("GET /.well-known/parkmesh.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, f.Peering.Identity())
	}))
	handle("GET /.well-known/jwks.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		httpjson.Write(w, http.StatusOK, f.Peering.Keys().JWKS())
	}))
	handle("POST /federation/v1/peering/establish", http.HandlerFunc(f.establish))
	handle("POST /federation/v1/search", f.authenticate(parktoken.ScopeSearch, f.search))
	handle("GET /federation/v1/listings/{kind}/{id}", f.authenticate(parktoken.ScopeListings, f.listing))
	handle("GET /federation/v1/changes", f.authenticate(parktoken.ScopeChanges, f.changes))
	if f.Interests != nil {
		handle("POST /federation/v1/interests", f.authenticate(parktoken.ScopeInterests, f.receiveInterest))
		handle("POST /federation/v1/interests/{id}/status", f.authenticate(parktoken.ScopeInterests, f.interestStatus))
	}
}

// Trusted reports whether r carries a valid federation token for its
// route's scope: only authenticated peers may continue their trace here.
func (f *API) Trusted(r *http.Request) bool {
	tok, err := parktoken.FromRequest(r)
	if err != nil {
		return false
	}
	var scope string
	switch {
	case strings.HasPrefix(r.URL.Path, "/federation/v1/search"):
		scope = parktoken.ScopeSearch
	case strings.HasPrefix(r.URL.Path, "/federation/v1/listings/"):
		scope = parktoken.ScopeListings
	case strings.HasPrefix(r.URL.Path, "/federation/v1/changes"):
		scope = parktoken.ScopeChanges
	case strings.HasPrefix(r.URL.Path, "/federation/v1/interests"):
		scope = parktoken.ScopeInterests
	default:
		return false
	}
	// Check, not Verify: the handler verifies the token again and uses
	// its jti up; looking here must not spend it.
	_, err = f.Verifier.Check(tok, scope)
	return err == nil
}

func (f *API) refuse(w http.ResponseWriter, r *http.Request, reason string, err error) {
	f.Logger.WarnContext(r.Context(), "federation request refused", "reason", reason, "path", r.URL.Path, "err", err)
	if f.AuthFailures != nil {
		f.AuthFailures(reason)
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="parkmesh-federation"`)
	apierror.Write(w, apierror.New(apierror.Unauthorized, "missing or invalid access token"))
}

// authenticate admits only requests carrying a valid federation token from
// an active peer, for scope. Anything else is a 401 with no detail.
func (f *API) authenticate(scope string, next handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := parktoken.FromRequest(r)
		var claims *parktoken.FederationClaims
		if err == nil {
			claims, err = f.Verifier.Verify(tok, scope)
		}
		if err != nil {
			f.refuse(w, r, parktoken.Reason(err), err)
			return
		}
		next(w, r, claims)
	})
}

func (f *API) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return search.MaxBudget
}

// establishSlot takes one of the MaxPendingEstablish handshake slots; ok
// is false when all are taken.
func (f *API) establishSlot() (release func(), ok bool) {
	f.pendingOnce.Do(func() {
		n := f.MaxPendingEstablish
		if n <= 0 {
			n = 4
		}
		f.pending = make(chan struct{}, n)
	})
	select {
	case f.pending <- struct{}{}:
		return func() { <-f.pending }, true
	default:
		return nil, false
	}
}

func (f *API) establish(w http.ResponseWriter, r *http.Request) {
	release, ok := f.establishSlot()
	if !ok {
		f.Logger.WarnContext(r.Context(), "peering handshake refused: too many in progress", "limit", "pending_establish", "max", cap(f.pending))
		if f.Limited != nil {
			f.Limited("pending_establish")
		}
		w.Header().Set("Retry-After", "5")
		apierror.Write(w, apierror.New(apierror.TooManyRequests, "too many peering handshakes in progress; retry shortly"))
		return
	}
	defer release()
	tok, err := parktoken.FromRequest(r)
	if err != nil {
		f.refuse(w, r, parktoken.Reason(err), err)
		return
	}
	var req peering.EstablishRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, httpjson.MaxSmallBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		f.refuse(w, r, "peering_body", err)
		return
	}
	resp, reason, err := f.Peering.AcceptEstablish(r.Context(), tok, req)
	if err != nil {
		if apierror.CodeOf(err) == apierror.Unauthorized {
			f.refuse(w, r, reason, err)
			return
		}
		if reason != "" && reason != "consul" {
			// The caller proved it holds the token, which stays unused.
			f.Logger.WarnContext(r.Context(), "peering refused", "reason", reason, "peer", req.Park, "err", err)
			if f.AuthFailures != nil {
				f.AuthFailures(reason)
			}
		}
		apierror.Write(w, err)
		return
	}
	f.Logger.InfoContext(r.Context(), "peering established", "peer", req.Park, "url", req.URL)
	httpjson.Write(w, http.StatusOK, resp)
}

func (f *API) search(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims) {
	if mt := r.Header.Get("Content-Type"); mt != "" && !strings.HasPrefix(mt, "application/json") {
		apierror.Write(w, apierror.InvalidField("Content-Type", "must be application/json"))
		return
	}
	q, kinds, err := clubsearch.DecodeFederationSearch(r.Body)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout())
	defer cancel()
	page, err := f.Local.Search(ctx, q, kinds, c.Issuer)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	if len(page.Failures) > 0 && len(page.Results) == 0 {
		apierror.Write(w, apierror.New(apierror.Unavailable, "the park's services are unavailable"))
		return
	}
	out := make([]*listing.Listing, 0, len(page.Results))
	for _, l := range page.Results {
		// Defence in depth: the services already filtered by visibility.
		if l.VisibleTo(c.Issuer) {
			out = append(out, l.ForPeers())
		}
	}
	// Counts come from the services' searches as the caller may see (the
	// query's visible_to): they reveal nothing the results would not.
	httpjson.Write(w, http.StatusOK, clubsearch.Answer{Results: out, NextCursor: page.Next,
		Facets: page.Facets, FacetsCapped: page.FacetsCapped, FacetsPartial: page.FacetsPartial})
}

func (f *API) listing(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims) {
	seg := r.PathValue("kind")
	k, ok := listing.KindOfCollection(seg)
	if !ok {
		k = listing.Kind(seg)
	}
	id := r.PathValue("id")
	notFound := apierror.New(apierror.NotFound, "no such listing")
	if !k.Valid() || !listing.ValidID(k, id) {
		apierror.Write(w, notFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout())
	defer cancel()
	l, err := f.Listings.Get(ctx, k, id)
	if apierror.CodeOf(err) == apierror.Unavailable {
		apierror.Write(w, err)
		return
	}
	if err != nil || !l.VisibleTo(c.Issuer) {
		// Same answer whether it does not exist or is not for this peer.
		apierror.Write(w, notFound)
		return
	}
	httpjson.Write(w, http.StatusOK, l.ForPeers())
}

// changes serves GET /federation/v1/changes: the park's changes feed of
// current state as a calling peer may see it, as Server-Sent Events
// carrying CloudEvents JSON. Without a position it is the full current
// copy of what the peer may see, then live; with Last-Event-ID it resumes
// after it, each listing changed since appearing once, as it is now. An
// SSE event "synced" marks the moment the stream has caught up.
func (f *API) changes(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims) {
	release, ok := f.StreamCaps.Acquire(c.Issuer)
	if !ok {
		f.Logger.WarnContext(r.Context(), "stream refused: cap reached", "limit", "streams_per_peer", "peer", c.Issuer, "max", f.StreamCaps.Max)
		if f.Limited != nil {
			f.Limited("streams_per_peer")
		}
		f.StreamCaps.Refuse(w, "park "+c.Issuer)
		return
	}
	defer release()
	// The start is fixed before the stream answers: a subscriber that acts
	// once it sees the answer must find its action after the start. A
	// start that cannot be served is refused before the stream begins.
	pos, err := Start(r, f.Feed)
	if err != nil {
		if apierror.CodeOf(err) == apierror.Unavailable {
			w.Header().Set("Retry-After", "1")
		}
		apierror.Write(w, err)
		return
	}
	s, err := sse.Start(w, r, f.FeedOptions.WriteTimeout)
	if err != nil {
		apierror.Write(w, apierror.New(apierror.Internal, "streaming unsupported"))
		return
	}
	// Authorization holds for the life of the stream, not just its start:
	// it ends when the peering is deleted or the token expires.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer f.track(c.Issuer, cancel)()
	if _, ok := f.Peering.Peers.Get(c.Issuer); !ok {
		return // deleted between the token check and now
	}
	expired := make(chan struct{})
	expiry := time.AfterFunc(time.Until(c.ExpiresAt), func() { close(expired) })
	defer expiry.Stop()
	opts := f.FeedOptions
	opts.Expired = expired
	opts.Synced = true
	f.Logger.InfoContext(r.Context(), "peer subscribed to changes", "peer", c.Issuer, "from", pos.String())
	// Tell the subscriber where it starts, so a reconnect before the first
	// change resumes from here rather than from a later "now".
	if err := s.Event(pos.String(), "position", []byte("{}")); err != nil || s.Flush() != nil {
		return
	}
	feed.Serve(ctx, s, feed.Source[feed.Position](feed.PeerView{Feed: f.Feed, Viewer: c.Issuer, From: pos, Sent: feed.NewSent()}), pos, opts, nil)
}

// Start is where a changes stream of the park's logs begins: after
// Last-Event-ID, at the newest change (?start=now), or at the beginning
// (the full current copy). A just-started gateway first waits until it has
// read its logs (503, retryable, if that takes too long): until then a
// position it issued would look ahead of them. A position the logs as they
// are now did not issue — ahead of them, or in the range a restore skipped
// (feed.Gap) — is a 409: the reader starts again without a position, from
// the full copy.
func Start(r *http.Request, local *feed.Local) (feed.Position, error) {
	var pos feed.Position
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if err := local.WaitReady(r.Context(), feed.ReadyWait); err != nil {
		return pos, apierror.New(apierror.Unavailable, "this gateway is still reading the park's change logs; retry shortly with the same position")
	}
	start := r.URL.Query().Get("start")
	switch {
	case last != "":
		p, err := feed.ParsePosition(last)
		if err != nil {
			return pos, err
		}
		if local.Void(p) {
			return pos, &apierror.Error{Code: apierror.Conflict, Field: "Last-Event-ID",
				Message: "this position was not issued by the park's change logs as they are now (they were restored from a backup); reconnect without Last-Event-ID for a full copy"}
		}
		return p, nil
	case start == "now":
		return local.Head(), nil
	case start != "" && start != "beginning":
		return pos, apierror.InvalidField("start", "must be beginning or now")
	}
	return pos, nil
}
