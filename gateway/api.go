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

// kindPaths maps the park-side path segment to a listing kind.
var kindPaths = map[string]listing.Kind{
	"organizations": listing.KindOrganization,
	"projects":      listing.KindProject,
	"talent":        listing.KindTalent,
}

// pathOf is the inverse of kindPaths.
func pathOf(k listing.Kind) string {
	for p, kk := range kindPaths {
		if kk == k {
			return p
		}
	}
	return ""
}

// Services is what the park-side API needs of the park's services.
type Services interface {
	Do(ctx context.Context, k listing.Kind, c Call) (Reply, error)
}

// Authorizer checks a park-local bearer token and the role it grants.
type Authorizer interface {
	Verify(token string) (*parktoken.Claims, error)
}

// API serves the park side of the gateway: CRUD proxied to the services,
// search across them, for the park's own staff and tools.
type API struct {
	Park     string
	Services Services
	Auth     Authorizer
	Logger   *slog.Logger
	Cursors  cursorSigner
	// Timeout bounds every park-side request (default 10 s).
	Timeout time.Duration
	// AuthFailures counts refused tokens by reason (may be nil).
	AuthFailures func(reason string)
	// Club, when set, serves club-scope searches across peers.
	Club *Club
	// Stream, when set, serves the park-side change stream.
	Stream      *parkStream
	FeedOptions FeedOptions
	// Webhooks, when set, manages outgoing webhooks.
	Webhooks *Webhooks
}

// Routes registers the API's handlers on mux, each wrapped by mw.
func (a *API) Routes(mux *http.ServeMux, mw func(string, http.Handler) http.Handler) {
	handle := func(pattern string, role parktoken.Role, h http.HandlerFunc) {
		mux.Handle(pattern, mw(pattern, a.authorize(role, h)))
	}
	handle("POST /api/v1/{kind}", parktoken.Editor, a.create)
	handle("GET /api/v1/{kind}", parktoken.Viewer, a.list)
	handle("GET /api/v1/{kind}/{id}", parktoken.Viewer, a.proxyOne)
	handle("PUT /api/v1/{kind}/{id}", parktoken.Editor, a.proxyOne)
	handle("DELETE /api/v1/{kind}/{id}", parktoken.Editor, a.proxyOne)
	handle("GET /api/v1/search", parktoken.Viewer, a.search)
	if a.Club != nil {
		a.peeringRoutes(mux, mw)
	}
	if a.Stream != nil {
		handle("GET /api/v1/stream", parktoken.Viewer, a.stream)
	}
	if a.Webhooks != nil {
		a.webhookRoutes(mux, mw)
	}
}

// authorize refuses requests without a valid park-local token (401) or
// whose role is too low (403). The reason goes to the log and a metric,
// never to the caller.
func (a *API) authorize(role parktoken.Role, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := parktoken.FromRequest(r)
		var claims *parktoken.Claims
		if err == nil {
			claims, err = a.Auth.Verify(tok)
		}
		if err == nil {
			err = parktoken.Require(claims, role)
		}
		if err != nil {
			reason := parktoken.Reason(err)
			a.Logger.WarnContext(r.Context(), "park-side request refused", "reason", reason, "path", r.URL.Path)
			if a.AuthFailures != nil {
				a.AuthFailures(reason)
			}
			if apierror.CodeOf(err) == apierror.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="parkmesh"`)
			}
			apierror.Write(w, err)
			return
		}
		next(w, r)
	})
}

func (a *API) timeout() time.Duration {
	if a.Timeout > 0 {
		return a.Timeout
	}
	return 10 * time.Second
}

func kindOf(r *http.Request) (listing.Kind, error) {
	k, ok := kindPaths[r.PathValue("kind")]
	if !ok {
		return "", apierror.New(apierror.NotFound, "no such collection %q; use organizations, projects or talent", clip(r.PathValue("kind")))
	}
	return k, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	a.forward(w, r, k, "/v1/listings")
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	a.forward(w, r, k, "/v1/listings")
}

func (a *API) proxyOne(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	a.forward(w, r, k, "/v1/listings/"+r.PathValue("id"))
}

// forward sends the request to a healthy instance of kind k's service and
// relays its answer, rewriting the Location of a created listing.
func (a *API) forward(w http.ResponseWriter, r *http.Request, k listing.Kind, path string) {
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout())
	defer cancel()
	c := Call{Method: r.Method, Path: path, Query: r.URL.RawQuery, Header: http.Header{}}
	for _, h := range []string{"Content-Type", "If-Match"} {
		if v := r.Header.Get(h); v != "" {
			c.Header.Set(h, v)
		}
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if r.ContentLength > listing.MaxBody {
			apierror.Write(w, apierror.InvalidField("body", "is larger than %d bytes", listing.MaxBody))
			return
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, listing.MaxBody))
		if err != nil {
			apierror.Write(w, apierror.InvalidField("body", "is larger than %d bytes or unreadable", listing.MaxBody))
			return
		}
		c.Body = b
	}
	rep, err := a.Services.Do(ctx, k, c)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	for _, h := range []string{"Content-Type", "ETag"} {
		if v := rep.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if loc := rep.Header.Get("Location"); loc != "" {
		w.Header().Set("Location", "/api/v1/"+pathOf(k)+"/"+strings.TrimPrefix(loc, "/v1/listings/"))
	}
	w.WriteHeader(rep.Status)
	w.Write(rep.Body)
}

// SearchResponse is the answer of a search across sources.
type SearchResponse struct {
	Results    []*listing.Listing `json:"results"`
	NextCursor string             `json:"next_cursor"`
	Partial    bool               `json:"partial"`
	Parks      ParkSummary        `json:"parks"`
}

// ParkSummary reports, as Elasticsearch's _clusters does, how each park
// answered: totals by status and one entry per park.
type ParkSummary struct {
	Total        int          `json:"total"`
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
	Error  string `json:"error,omitempty"`
}

// Park statuses.
const (
	StatusOK           = "ok"
	StatusTimeout      = "timeout"
	StatusCircuitOpen  = "circuit_open"
	StatusUnauthorized = "unauthorized"
	StatusError        = "error"
)

func (s *ParkSummary) add(p ParkStatus) {
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
	default:
		s.Error++
	}
	s.Details = append(s.Details, p)
}

// searchService runs one page of q on kind k's service.
func (a *API) searchService(ctx context.Context, k listing.Kind, q listing.Query) (*listing.Page, error) {
	rep, err := a.Services.Do(ctx, k, Call{Method: http.MethodGet, Path: "/v1/listings", Query: q.Values().Encode()})
	if err != nil {
		return nil, err
	}
	if rep.Status != http.StatusOK {
		e := apierror.Read(rep.Status, strings.NewReader(string(rep.Body)))
		if e.Code == apierror.Invalid {
			return nil, e
		}
		return nil, apierror.New(apierror.Unavailable, "%s service answered %d", k, rep.Status)
	}
	var page listing.Page
	if err := json.Unmarshal(rep.Body, &page); err != nil {
		return nil, apierror.New(apierror.Unavailable, "%s service answered malformed JSON", k)
	}
	return &page, nil
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
