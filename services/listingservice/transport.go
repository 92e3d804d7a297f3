package listingservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	httptransport "github.com/go-kit/kit/transport/http"
	"go.opentelemetry.io/otel/trace"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// The service's paths (DESIGN.md "Listings"). The server's routes and the
// client's requests are both made from these, and nothing outside this
// package writes them: a caller goes through NewHTTPClient.
const (
	listingsPath = "/v1/listings"
	changesPath  = "/v1/changes"
	readyPath    = "/readyz"
	healthPath   = "/healthz"
)

// Change-log long-poll bounds.
const (
	MaxWait          = 30 * time.Second
	DefaultChanges   = 100
	MaxChangesPerGet = 1000
)

// NewHTTPHandler serves set on the paths DESIGN.md pins for kind k, each
// route wrapped by mw (logging and metrics) under its route name.
func NewHTTPHandler(k listing.Kind, set Set, logger *slog.Logger, mw func(route string, h http.Handler) http.Handler) http.Handler {
	errEnc := errorEncoder(logger)
	route := func(mux *http.ServeMux, pattern string, e func(context.Context, any) (any, error), dec httptransport.DecodeRequestFunc) {
		h := httptransport.NewServer(e, dec, encodeResponse(errEnc, listingsPath), httptransport.ServerErrorEncoder(errEnc))
		mux.Handle(pattern, mw(pattern, h))
	}
	mux := http.NewServeMux()
	ListingRoutes(mux, k, set, listingsPath, logger, mw)
	route(mux, "GET "+changesPath, set.ChangesEndpoint, decodeChanges)
	route(mux, "GET "+readyPath, set.ReadyEndpoint, func(context.Context, *http.Request) (any, error) { return nil, nil })
	mux.Handle("GET "+healthPath, mw("GET "+healthPath, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.Handle("/", mw("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, apierror.New(apierror.NotFound, "no route %s %s", r.Method, clip(r.URL.Path)))
	})))
	return mux
}

// ListingRoutes registers kind k's listing routes (create, search, get,
// update, delete) of svc under base on mux, each wrapped by mw under its
// pattern. The service serves them at /v1/listings; the gateway serves the
// same transport over its balanced client at /api/v1/<collection>, so the
// park's staff get exactly the service's decoding, validation, errors and
// headers (ETag, Location under base).
func ListingRoutes(mux *http.ServeMux, k listing.Kind, svc Service, base string, logger *slog.Logger, mw func(route string, h http.Handler) http.Handler) {
	set, ok := svc.(Set)
	if !ok {
		set = NewSet(svc)
	}
	errEnc := errorEncoder(logger)
	route := func(pattern string, e func(context.Context, any) (any, error), dec httptransport.DecodeRequestFunc) {
		h := httptransport.NewServer(e, dec, encodeResponse(errEnc, base), httptransport.ServerErrorEncoder(errEnc))
		mux.Handle(pattern, mw(pattern, h))
	}
	route("POST "+base, set.CreateEndpoint, decodeCreate)
	route("GET "+base, set.SearchEndpoint, decodeSearch(k))
	route("GET "+base+"/{id}", set.GetEndpoint, func(_ context.Context, r *http.Request) (any, error) {
		return getRequest{ID: r.PathValue("id")}, nil
	})
	route("PUT "+base+"/{id}", set.UpdateEndpoint, decodeUpdate)
	route("DELETE "+base+"/{id}", set.DeleteEndpoint, func(_ context.Context, r *http.Request) (any, error) {
		v, err := ifMatch(r)
		return deleteRequest{ID: r.PathValue("id"), IfVersion: v}, err
	})
}

// errorEncoder writes a service error; internal causes go to the log and
// the trace, never to the caller.
func errorEncoder(logger *slog.Logger) httptransport.ErrorEncoder {
	return func(ctx context.Context, err error, w http.ResponseWriter) {
		if apierror.CodeOf(err) == apierror.Internal {
			logger.ErrorContext(ctx, "internal error", "err", err)
			// The operator sees the cause on the trace; the caller never does.
			trace.SpanFromContext(ctx).RecordError(err)
		}
		apierror.Write(w, err)
	}
}

func decodeCreate(_ context.Context, r *http.Request) (any, error) {
	if err := jsonBody(r); err != nil {
		return nil, err
	}
	l, err := listing.Decode(r.Body)
	if err != nil {
		return nil, err
	}
	return createRequest{Listing: l}, nil
}

func decodeUpdate(_ context.Context, r *http.Request) (any, error) {
	v, err := ifMatch(r)
	if err != nil {
		return nil, err
	}
	if err := jsonBody(r); err != nil {
		return nil, err
	}
	l, err := listing.Decode(r.Body)
	if err != nil {
		return nil, err
	}
	return updateRequest{ID: r.PathValue("id"), IfVersion: v, Listing: l}, nil
}

// jsonBody refuses bodies that say they are not JSON and caps their size.
func jsonBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/json") {
		return apierror.InvalidField("Content-Type", "must be application/json")
	}
	if r.ContentLength > listing.MaxBody {
		return apierror.InvalidField("body", "is larger than %d bytes", listing.MaxBody)
	}
	r.Body = http.MaxBytesReader(nil, r.Body, listing.MaxBody)
	return nil
}

// ifMatch reads the If-Match header: a version number, quoted as an ETag
// or bare. Absent means unconditional.
func ifMatch(r *http.Request) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return 0, nil
	}
	h = strings.TrimPrefix(h, "W/")
	v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	if err != nil || v < 1 {
		return 0, apierror.InvalidField("If-Match", "must be the listing's version, e.g. \"3\"")
	}
	return v, nil
}

func decodeSearch(k listing.Kind) httptransport.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) {
		return listing.ParseQuery(r.URL.Query(), k)
	}
}

func decodeChanges(_ context.Context, r *http.Request) (any, error) {
	v := r.URL.Query()
	for name := range v {
		if name != "after" && name != "wait" && name != "limit" && name != "since" {
			return nil, apierror.InvalidField(clip(name), "is not a parameter of the change log")
		}
	}
	req := changesRequest{Limit: DefaultChanges}
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, apierror.InvalidField("after", "must be a non-negative sequence number")
		}
		req.After = n
	}
	if s := v.Get("since"); s != "" {
		if v.Get("after") != "" {
			return nil, apierror.InvalidField("since", "cannot be combined with after")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, apierror.InvalidField("since", "must be an RFC 3339 time")
		}
		req.Since = t
	}
	if s := v.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			if n, err2 := strconv.Atoi(s); err2 == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || d < 0 || d > MaxWait {
			return nil, apierror.InvalidField("wait", "must be a duration between 0s and %s", MaxWait)
		}
		req.Wait = d
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxChangesPerGet {
			return nil, apierror.InvalidField("limit", "must be an integer between 1 and %d", MaxChangesPerGet)
		}
		req.Limit = n
	}
	return req, nil
}

func encodeResponse(errEnc httptransport.ErrorEncoder, base string) httptransport.EncodeResponseFunc {
	return func(ctx context.Context, w http.ResponseWriter, resp any) error {
		if f, ok := resp.(Failer); ok && f.Failed() != nil {
			errEnc(ctx, f.Failed(), w)
			return nil
		}
		switch r := resp.(type) {
		case listingResponse:
			w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(r.Listing.Version, 10)))
			status := http.StatusOK
			if r.Created {
				w.Header().Set("Location", base+"/"+r.Listing.ID)
				status = http.StatusCreated
			}
			return writeJSON(w, status, r.Listing)
		case deleteResponse:
			w.WriteHeader(http.StatusNoContent)
			return nil
		case searchResponse:
			return writeJSON(w, http.StatusOK, r.Page)
		case changesResponse:
			return writeJSON(w, http.StatusOK, r.Page)
		case readyResponse:
			return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
		return writeJSON(w, http.StatusOK, resp)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// The client's half of the transport: each encoder below writes the request
// its server decoder above reads, and each decoder reads what
// encodeResponse wrote.

// maxReplyBody bounds what the client reads of one answer. A page of 100
// listings is well under 1 MiB; 8 MiB leaves room for a full change-log
// page of large listings while an instance gone wrong cannot exhaust the
// caller's memory.
const maxReplyBody = 8 << 20

func encodeCreateRequest(_ context.Context, r *http.Request, req any) error {
	return setJSONBody(r, req.(createRequest).Listing)
}

func encodeGetRequest(_ context.Context, r *http.Request, req any) error {
	setListingPath(r, req.(getRequest).ID)
	return nil
}

func encodeUpdateRequest(_ context.Context, r *http.Request, req any) error {
	u := req.(updateRequest)
	setListingPath(r, u.ID)
	setIfMatch(r, u.IfVersion)
	return setJSONBody(r, u.Listing)
}

func encodeDeleteRequest(_ context.Context, r *http.Request, req any) error {
	d := req.(deleteRequest)
	setListingPath(r, d.ID)
	setIfMatch(r, d.IfVersion)
	return nil
}

func encodeSearchRequest(_ context.Context, r *http.Request, req any) error {
	r.URL.RawQuery = req.(listing.Query).Values().Encode()
	return nil
}

func encodeChangesRequest(_ context.Context, r *http.Request, req any) error {
	c := req.(changesRequest)
	v := url.Values{}
	if !c.Since.IsZero() {
		v.Set("since", c.Since.UTC().Format(time.RFC3339Nano))
	} else {
		v.Set("after", strconv.FormatInt(c.After, 10))
	}
	if c.Limit > 0 {
		v.Set("limit", strconv.Itoa(c.Limit))
	}
	if c.Wait > 0 {
		v.Set("wait", c.Wait.String())
	}
	r.URL.RawQuery = v.Encode()
	return nil
}

func encodeReadyRequest(context.Context, *http.Request, any) error { return nil }

// setListingPath appends the listing id to the request's path, escaped, so
// an id holding '/' or '?' stays one path segment (the server then answers
// NotFound for it, as the service does in process).
func setListingPath(r *http.Request, id string) {
	prefix := r.URL.EscapedPath()
	r.URL.Path += "/" + id
	r.URL.RawPath = prefix + "/" + url.PathEscape(id)
}

// setIfMatch sends ifVersion as the ETag ifMatch reads; 0 means
// unconditional and sends nothing.
func setIfMatch(r *http.Request, ifVersion int64) {
	if ifVersion != 0 {
		r.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(ifVersion, 10)))
	}
}

// setJSONBody sends v as the request's JSON body, with its length and
// GetBody so the transport may resend it on a connection that died idle.
func setJSONBody(r *http.Request, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = int64(len(b))
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return nil
}

func decodeListingResponse(_ context.Context, res *http.Response) (any, error) {
	l := new(listing.Listing)
	failed, err := readReply(res, l)
	if err != nil || failed != nil {
		return listingResponse{Err: failed}, err
	}
	// The ETag is the version (encodeResponse): an answer where they differ
	// did not come whole from the service.
	if etag := res.Header.Get("ETag"); etag != "" && etag != strconv.Quote(strconv.FormatInt(l.Version, 10)) {
		return nil, &TransportError{Status: res.StatusCode, Err: fmt.Errorf("ETag %.20q does not match version %d", etag, l.Version)}
	}
	return listingResponse{Listing: l, Created: res.StatusCode == http.StatusCreated}, nil
}

func decodeDeleteResponse(_ context.Context, res *http.Response) (any, error) {
	failed, err := readReply(res, nil)
	return deleteResponse{Err: failed}, err
}

func decodeSearchResponse(_ context.Context, res *http.Response) (any, error) {
	p := new(listing.Page)
	failed, err := readReply(res, p)
	if err != nil || failed != nil {
		return searchResponse{Err: failed}, err
	}
	return searchResponse{Page: p}, nil
}

func decodeChangesResponse(_ context.Context, res *http.Response) (any, error) {
	p := new(ChangesPage)
	failed, err := readReply(res, p)
	if err != nil || failed != nil {
		return changesResponse{Err: failed}, err
	}
	return changesResponse{Page: p}, nil
}

func decodeReadyResponse(_ context.Context, res *http.Response) (any, error) {
	failed, err := readReply(res, nil)
	return readyResponse{Err: failed}, err
}

// readReply reads an instance's answer (at most maxReplyBody) into into
// (nil: the body is not needed). It sorts the answer three ways:
//
//   - a 2xx with a body that decodes: both results nil;
//   - the service's verdict, a 4xx, or a 5xx with a ParkMesh JSON error
//     body: failed is that *apierror.Error, to travel in the response;
//   - anything else is a *TransportError, returned as err: a 503 (the
//     instance cannot serve now; another may), a 5xx without an error body
//     (a proxy or a crash in between), an unexpected status, a body too
//     large or one that does not decode.
func readReply(res *http.Response, into any) (failed, err error) {
	body, err := io.ReadAll(io.LimitReader(res.Body, maxReplyBody+1))
	if err != nil {
		return nil, &TransportError{Status: res.StatusCode, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if len(body) > maxReplyBody {
		return nil, &TransportError{Status: res.StatusCode, Err: fmt.Errorf("answer larger than %d bytes", maxReplyBody)}
	}
	status := res.StatusCode
	switch {
	case status == http.StatusServiceUnavailable:
		e, _ := apierror.Parse(body) // the service's reason, when it gave one
		return nil, &TransportError{Status: status, Err: errors.New("instance unavailable"), api: e}
	case status >= 500:
		if e, ok := apierror.Parse(body); ok {
			return e, nil
		}
		return nil, &TransportError{Status: status, Err: fmt.Errorf("%d answer without an error body", status)}
	case status >= 400:
		// Without an error body (Go's own 431, say) the status still says
		// what was wrong with the request, through apierror's one table;
		// another instance would refuse it too.
		return apierror.Read(status, bytes.NewReader(body)), nil
	case status < 200 || status >= 300:
		return nil, &TransportError{Status: status, Err: fmt.Errorf("unexpected status %d", status)}
	}
	if into == nil {
		return nil, nil
	}
	if err := json.Unmarshal(body, into); err != nil {
		return nil, &TransportError{Status: status, Err: fmt.Errorf("malformed answer: %w", err)}
	}
	return nil, nil
}
