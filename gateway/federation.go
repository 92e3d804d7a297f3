package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// FederationAPI serves the federation side: what peer gateways call.
type FederationAPI struct {
	Fed      *Federation
	API      *API
	Verifier *parktoken.FederationVerifier
	Logger   *slog.Logger
	// AuthFailures counts refused tokens by reason (may be nil).
	AuthFailures func(reason string)
	// Timeout bounds the work for one federation request.
	Timeout time.Duration
	// Feed is the park's change feed; FeedOptions tune its streams.
	Feed        *LocalFeed
	FeedOptions FeedOptions
}

type fedHandler func(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims)

// Routes registers the federation side on mux.
func (f *FederationAPI) Routes(mux *http.ServeMux, mw func(string, http.Handler) http.Handler) {
	mux.Handle("GET /.well-known/parkmesh.json", mw("GET /.well-known/parkmesh.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, f.Fed.Identity())
	})))
	mux.Handle("GET /.well-known/jwks.json", mw("GET /.well-known/jwks.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		writeJSON(w, http.StatusOK, f.Fed.Keys().JWKS())
	})))
	mux.Handle("POST /federation/v1/peering/establish", mw("POST /federation/v1/peering/establish", http.HandlerFunc(f.establish)))
	mux.Handle("POST /federation/v1/search", mw("POST /federation/v1/search", f.authenticate(parktoken.ScopeSearch, f.search)))
	mux.Handle("GET /federation/v1/listings/{kind}/{id}", mw("GET /federation/v1/listings/{kind}/{id}", f.authenticate(parktoken.ScopeListings, f.listing)))
	mux.Handle("GET /federation/v1/changes", mw("GET /federation/v1/changes", f.authenticate(parktoken.ScopeChanges, f.changes)))
}

func (f *FederationAPI) refuse(w http.ResponseWriter, r *http.Request, reason string, err error) {
	f.Logger.WarnContext(r.Context(), "federation request refused", "reason", reason, "path", r.URL.Path, "err", err)
	if f.AuthFailures != nil {
		f.AuthFailures(reason)
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="parkmesh-federation"`)
	apierror.Write(w, apierror.New(apierror.Unauthorized, "missing or invalid access token"))
}

// authenticate admits only requests carrying a valid federation token from
// an active peer, for scope. Anything else is a 401 with no detail.
func (f *FederationAPI) authenticate(scope string, next fedHandler) http.Handler {
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

func (f *FederationAPI) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return MaxBudget
}

func (f *FederationAPI) establish(w http.ResponseWriter, r *http.Request) {
	tok, err := parktoken.FromRequest(r)
	if err != nil {
		f.refuse(w, r, parktoken.Reason(err), err)
		return
	}
	var req establishRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		f.refuse(w, r, "peering_body", err)
		return
	}
	resp, reason, err := f.Fed.AcceptEstablish(r.Context(), tok, req)
	if err != nil {
		if apierror.CodeOf(err) == apierror.Unauthorized {
			f.refuse(w, r, reason, err)
			return
		}
		apierror.Write(w, err)
		return
	}
	f.Logger.InfoContext(r.Context(), "peering established", "peer", req.Park, "url", req.URL)
	writeJSON(w, http.StatusOK, resp)
}

func (f *FederationAPI) search(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims) {
	if mt := r.Header.Get("Content-Type"); mt != "" && !strings.HasPrefix(mt, "application/json") {
		apierror.Write(w, apierror.InvalidField("Content-Type", "must be application/json"))
		return
	}
	q, kinds, err := DecodeFederationSearch(r.Body)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout())
	defer cancel()
	results, next, failures, err := f.API.localSearch(ctx, q, kinds, c.Issuer)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	if len(failures) > 0 && len(results) == 0 {
		apierror.Write(w, apierror.New(apierror.Unavailable, "the park's services are unavailable"))
		return
	}
	out := make([]*listing.Listing, 0, len(results))
	for _, l := range results {
		// Defence in depth: the services already filtered by visibility.
		if l.VisibleTo(c.Issuer) {
			out = append(out, l.ForPeers())
		}
	}
	writeJSON(w, http.StatusOK, peerAnswer{Results: out, NextCursor: next})
}

func (f *FederationAPI) listing(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims) {
	seg := r.PathValue("kind")
	k, ok := kindPaths[seg]
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
	rep, err := f.API.Services.Do(ctx, k, Call{Method: http.MethodGet, Path: "/v1/listings/" + id})
	if err != nil {
		apierror.Write(w, err)
		return
	}
	var l listing.Listing
	if rep.Status != http.StatusOK || json.Unmarshal(rep.Body, &l) != nil || !l.VisibleTo(c.Issuer) {
		// Same answer whether it does not exist or is not for this peer.
		apierror.Write(w, notFound)
		return
	}
	writeJSON(w, http.StatusOK, l.ForPeers())
}

// peeringRoutes are the park-side admin endpoints for peerings.
func (a *API) peeringRoutes(mux *http.ServeMux, mw func(string, http.Handler) http.Handler) {
	handle := func(pattern string, role parktoken.Role, h http.HandlerFunc) {
		mux.Handle(pattern, mw(pattern, a.authorize(role, h)))
	}
	handle("POST /api/v1/peerings/tokens", parktoken.Admin, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Peer string `json:"peer"`
			TTL  string `json:"ttl"`
		}
		if err := decodeSmallJSON(r, &req); err != nil {
			apierror.Write(w, err)
			return
		}
		var ttl time.Duration
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil {
				apierror.Write(w, apierror.InvalidField("ttl", "must be a duration such as 24h"))
				return
			}
			ttl = d
		}
		tok, exp, err := a.Club.Fed.GenerateToken(r.Context(), req.Peer, ttl)
		if err != nil {
			apierror.Write(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "peer": req.Peer, "expires_at": exp})
	})
	handle("POST /api/v1/peerings", parktoken.Admin, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token string `json:"token"`
		}
		if err := decodeSmallJSON(r, &req); err != nil {
			apierror.Write(w, err)
			return
		}
		p, err := a.Club.Fed.Establish(r.Context(), req.Token)
		if err != nil {
			apierror.Write(w, err)
			return
		}
		a.Logger.InfoContext(r.Context(), "peering established", "peer", p.ID, "url", p.URL)
		writeJSON(w, http.StatusCreated, map[string]any{"park": p.ID, "url": p.URL, "established_at": p.EstablishedAt})
	})
	handle("DELETE /api/v1/peerings/{peer}", parktoken.Admin, func(w http.ResponseWriter, r *http.Request) {
		ok, err := a.Club.Fed.Peers.Delete(r.Context(), r.PathValue("peer"))
		if err != nil {
			apierror.Write(w, apierror.New(apierror.Unavailable, "cannot delete the peering: Consul unreachable"))
			return
		}
		if !ok {
			apierror.Write(w, apierror.New(apierror.NotFound, "no peering with %q", clip(r.PathValue("peer"))))
			return
		}
		a.Club.SyncPeers()
		a.Logger.InfoContext(r.Context(), "peering deleted", "peer", r.PathValue("peer"))
		w.WriteHeader(http.StatusNoContent)
	})
	handle("GET /api/v1/peers", parktoken.Viewer, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"park": a.Park, "peers": a.Club.Peers()})
	})
}

func decodeSmallJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
			return unknownField(strings.TrimSuffix(name, `"`), "is not a field of this request")
		}
		return apierror.InvalidField("body", "must be a JSON object")
	}
	return nil
}

// unknownField names an unknown JSON field in an error, or "body" when the
// field's name is empty.
func unknownField(name, msg string) error {
	if name == "" {
		return apierror.InvalidField("body", "has a field with an empty name")
	}
	return apierror.InvalidField(clip(name), "%s", msg)
}

// changes serves GET /federation/v1/changes: the park's changes as a calling
// peer may see them, as Server-Sent Events carrying CloudEvents JSON. The
// SSE id is resumable with Last-Event-ID; without one the stream starts at
// the beginning of the change log (a full replay), at a point in time with
// ?since=RFC3339, or at the newest change with ?start=now.
func (f *FederationAPI) changes(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims) {
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	s, err := startSSE(w, r, f.FeedOptions.WriteTimeout)
	if err != nil {
		apierror.Write(w, apierror.New(apierror.Internal, "streaming unsupported"))
		return
	}
	var pos Position
	start, since := r.URL.Query().Get("start"), r.URL.Query().Get("since")
	switch {
	case last != "":
	case since != "":
		// From a point in time: a new follower starts at the moment the
		// peering was made and syncs what came before by searching.
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			s.fail(StreamError{Code: "invalid_since", Message: "since must be an RFC 3339 time"})
			return
		}
		if pos, err = f.Feed.PositionAt(r.Context(), t); err != nil {
			s.fail(StreamError{Code: "unavailable", Message: "the park's change logs are unavailable; reconnect later"})
			return
		}
	case start == "now":
		pos = f.Feed.Head()
	case start != "" && start != "beginning":
		s.fail(StreamError{Code: "invalid_start", Message: "start must be beginning or now"})
		return
	}
	if last != "" {
		p, err := ParsePosition(last)
		head := f.Feed.Head()
		if err != nil {
			s.fail(StreamError{Code: "invalid_last_event_id", Message: "Last-Event-ID is not an id of this feed; nothing was resumed",
				Resync: "reconnect without Last-Event-ID to replay the feed from its start, or search with updated_since to catch up"})
			return
		}
		if p[0] > head[0] || p[1] > head[1] || p[2] > head[2] {
			s.fail(StreamError{Code: "cannot_resume", Message: "Last-Event-ID is ahead of this park's change log (restored from a backup?)",
				Resync: "reconnect without Last-Event-ID to replay the feed from its start"})
			return
		}
		pos = p
	}
	f.Logger.InfoContext(r.Context(), "peer subscribed to changes", "peer", c.Issuer, "from", pos.String())
	// Tell the subscriber where it starts, so a reconnect before the first
	// change resumes from here rather than from a later "now".
	if err := s.event(pos.String(), "position", []byte("{}")); err != nil || s.flush() != nil {
		return
	}
	streamLocal(r.Context(), s, f.Feed, pos, c.Issuer, f.FeedOptions, nil)
}
