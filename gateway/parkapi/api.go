// Package parkapi serves the park side of the gateway, for the park's own
// staff and tools holding park-local tokens: listings CRUD proxied to the
// services, search (local or club), the park stream, peerings and
// webhooks. It owns authorization by role; the work itself is done by the
// packages it calls.
package parkapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/credentials"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/interests"
	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/gateway/webhook"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// Services gives each kind's service as one listingservice.Service
// (discovery.Services: balanced over the healthy instances).
type Services interface {
	For(k listing.Kind) listingservice.Service
}

// Authorizer checks a park-local bearer token and the role it grants.
type Authorizer interface {
	Verify(token string) (*parktoken.Claims, error)
}

// Sessions resolves a portal session cookie to the principal it stands
// for (session.Manager): ok is false when the request carries no session
// cookie; a state-changing request must also carry its CSRF token.
type Sessions interface {
	Authenticate(r *http.Request) (claims *parktoken.Claims, ok bool, err error)
}

// API serves the park side.
type API struct {
	Park     string
	Services Services
	Auth     Authorizer
	// Sessions, when set, lets a signed-in person (session cookie) use
	// every endpoint a token of the same role may.
	Sessions Sessions
	// DisplayName (zh, en) and Country are the park's identity for people.
	DisplayName map[string]string
	Country     string
	Logger      *slog.Logger
	// Timeout bounds every park-side request (default 10 s).
	Timeout time.Duration
	// AuthFailures counts refused tokens by reason (may be nil).
	AuthFailures func(reason string)
	// Local searches the park's services.
	Local *localsearch.Searcher
	// Club, when set, serves club-scope searches and the peers view;
	// Peering and Peers manage peerings.
	Club    *clubsearch.Club
	Peering *peering.Federation
	Peers   *peering.Store
	// Index, when set, is the club index: it serves the park-side change
	// stream and single listings of any park.
	Index       *clubindex.Index
	FeedOptions feed.Options
	// Webhooks, when set, manages outgoing webhooks.
	Webhooks *webhook.Webhooks
	// Credentials, when set, lists and revokes the park-local tokens.
	Credentials *credentials.Credentials
	// StreamCaps bounds the streams each park-local token holds open.
	StreamCaps sse.Caps
	// Limited counts requests refused by a cap, by cap (may be nil).
	Limited func(limit string)
	// Interests, when set, serves the park's expressions of interest.
	Interests *interests.Service
}

// Routes registers the API's handlers on mux, each wrapped by mw.
func (a *API) Routes(mux *http.ServeMux, mw func(string, http.Handler) http.Handler) {
	handle := func(pattern string, role parktoken.Role, h http.HandlerFunc) {
		mux.Handle(pattern, mw(pattern, a.authorize(role, h)))
	}
	// Listings: the listing service's own transport over the balanced
	// client, so staff get exactly the service's validation, errors and
	// headers. Reading needs a viewer, writing an editor.
	for _, k := range listing.Kinds {
		listingservice.ListingRoutes(mux, k, a.Services.For(k), "/api/v1/"+k.Collection(), a.Logger,
			func(pattern string, h http.Handler) http.Handler {
				role := parktoken.Editor
				if strings.HasPrefix(pattern, http.MethodGet+" ") {
					role = parktoken.Viewer
				}
				if strings.HasSuffix(pattern, "/{id}") {
					h = validID(k, h)
				}
				return mw(pattern, a.authorize(role, a.bounded(h)))
			})
	}
	handle("GET /api/v1/search", parktoken.Viewer, a.search)
	handle("GET /api/v1/park", parktoken.Viewer, a.park)
	if a.Club != nil {
		handle("POST /api/v1/peerings/tokens", parktoken.Admin, a.generatePeeringToken)
		handle("POST /api/v1/peerings", parktoken.Admin, a.establishPeering)
		handle("DELETE /api/v1/peerings/{peer}", parktoken.Admin, a.deletePeering)
		handle("GET /api/v1/peers", parktoken.Viewer, a.peers)
		handle("GET /api/v1/club/{park}/{kind}/{id}", parktoken.Viewer, a.clubListing)
	}
	if a.Index != nil {
		handle("GET /api/v1/stream", parktoken.Viewer, a.stream)
	}
	if a.Credentials != nil {
		handle("GET /api/v1/tokens", parktoken.Admin, a.listTokens)
		handle("GET /api/v1/tokens/{id}", parktoken.Admin, a.getToken)
		handle("DELETE /api/v1/tokens/{id}", parktoken.Admin, a.revokeToken)
	}
	if a.Webhooks != nil {
		handle("POST /api/v1/webhooks", parktoken.Admin, a.createWebhook)
		handle("GET /api/v1/webhooks", parktoken.Admin, a.listWebhooks)
		handle("DELETE /api/v1/webhooks/{id}", parktoken.Admin, a.deleteWebhook)
		handle("GET /api/v1/webhooks/{id}/deliveries", parktoken.Admin, a.deliveries)
	}
	if a.Interests != nil {
		a.interestRoutes(handle)
	}
}

// authorize refuses requests without a valid park-local token or portal
// session (401) or whose role is too low (403). A bearer token wins over a
// cookie; a request authenticated by its session cookie that changes
// something must carry the session's CSRF token (403 csrf). The reason
// goes to the log and a metric, never to the caller.
func (a *API) authorize(role parktoken.Role, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, err := a.principal(r)
		if err == nil {
			err = parktoken.Require(claims, role)
		}
		if err != nil {
			reason := reason(err)
			a.Logger.WarnContext(r.Context(), "park-side request refused", "reason", reason, "path", r.URL.Path)
			if a.AuthFailures != nil {
				a.AuthFailures(reason)
			}
			if apierror.CodeOf(err) == apierror.Unauthorized || apierror.CodeOf(err) == apierror.Unauthenticated {
				w.Header().Set("WWW-Authenticate", `Bearer realm="parkmesh"`)
			}
			apierror.Write(w, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

// principal is who r is: the claims of its bearer token or of its session.
func (a *API) principal(r *http.Request) (*parktoken.Claims, error) {
	if a.Sessions != nil && len(r.Header.Values("Authorization")) == 0 {
		if claims, ok, err := a.Sessions.Authenticate(r); ok {
			if err != nil && !apierror.Is(err, apierror.Internal) {
				err = &sessionRefused{err}
			}
			return claims, err
		}
	}
	tok, err := parktoken.FromRequest(r)
	if err != nil {
		return nil, err
	}
	return a.Auth.Verify(tok)
}

// sessionRefused is a session refused (no live session, or no CSRF token):
// its reason for the log and metric is "session" or "csrf".
type sessionRefused struct{ err error }

func (e *sessionRefused) Error() string { return e.err.Error() }
func (e *sessionRefused) Unwrap() error { return e.err }

// reason is the log and metric reason of a refusal.
func reason(err error) string {
	var s *sessionRefused
	if errors.As(err, &s) {
		if apierror.Is(err, apierror.CSRF) {
			return "csrf"
		}
		return "session"
	}
	return parktoken.Reason(err)
}

// park answers GET /api/v1/park: the park's identity for the portal's
// header.
func (a *API) park(w http.ResponseWriter, _ *http.Request) {
	names := a.DisplayName
	if names == nil {
		names = map[string]string{}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"id": a.Park, "display_name": names, "country": a.Country})
}

type claimsKey struct{}

// claimsOf returns the verified claims authorize put in r's context.
func claimsOf(r *http.Request) *parktoken.Claims {
	c, _ := r.Context().Value(claimsKey{}).(*parktoken.Claims)
	return c
}

// validID refuses, before anything is forwarded to the service, an {id}
// that is not an id of kind k: the id becomes part of the service's path,
// so "..%2Fchanges" must not get there.
func validID(k listing.Kind, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); !listing.ValidID(k, id) {
			apierror.Write(w, apierror.InvalidField("id", "%q is not a %s id (%s_ and 26 characters of Crockford base32)",
				httpjson.Clip(id), k, k.IDPrefix()))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bounded gives a request the park side's deadline.
func (a *API) bounded(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), a.timeout())
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	}
}

func (a *API) timeout() time.Duration {
	if a.Timeout > 0 {
		return a.Timeout
	}
	return 10 * time.Second
}

// Trusted reports whether r carries a valid park-local token: only the
// park's own staff and tools may continue a trace they started.
func (a *API) Trusted(r *http.Request) bool {
	_, err := a.principal(r)
	return err == nil
}
