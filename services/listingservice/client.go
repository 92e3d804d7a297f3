package listingservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// NewHTTPClient returns the Service of the listing service instance at
// instance ("host:port", or a base URL such as "http://10.0.0.7:7102"),
// called over HTTP with client (nil: http.DefaultClient). It is the
// service's client half, as go-kit's addsvc has one: callers use the same
// Service interface the server implements and never write its paths.
//
// Errors: the service's verdicts come back as the *apierror.Error it sent
// (same code, message and field). A call that got no usable answer fails
// with a *TransportError instead (see IsTransport), which only a load
// balancer should act on.
//
// Each call carries ctx: its deadline bounds the request, and its span
// reaches the instance as W3C trace context through client's transport
// (pkg/telemetry's Transport), which this client does not wrap again so a
// call is one client span. Answers are read up to 8 MiB.
func NewHTTPClient(instance string, client *http.Client) (Service, error) {
	set, err := NewHTTPClientSet(instance, client)
	if err != nil {
		return nil, err
	}
	return set, nil
}

// NewHTTPClientSet is NewHTTPClient as endpoints, for a caller that
// balances over instances with go-kit's sd and lb: an sd.Factory makes one
// Set per instance, and a Set whose endpoints are lb.RetryWithCallback
// endpoints (retrying while IsTransport) is again the Service. A business
// error is a response, not an endpoint error, so it is never retried and
// never trips a breaker.
func NewHTTPClientSet(instance string, client *http.Client) (Set, error) {
	base, err := instanceURL(instance)
	if err != nil {
		return Set{}, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	// route is the server's route pattern, which names the call in errors;
	// the encoders add an id to the path and the query.
	newEndpoint := func(method, path, route string, enc httptransport.EncodeRequestFunc, dec httptransport.DecodeResponseFunc) endpoint.Endpoint {
		tgt := *base
		tgt.Path = strings.TrimSuffix(base.Path, "/") + path
		e := httptransport.NewClient(method, &tgt, enc, dec, httptransport.SetClient(client)).Endpoint()
		return transportErrors(instance, method+" "+route, e)
	}
	byID := listingsPath + "/{id}"
	return Set{
		CreateEndpoint:  newEndpoint(http.MethodPost, listingsPath, listingsPath, encodeCreateRequest, decodeListingResponse),
		GetEndpoint:     newEndpoint(http.MethodGet, listingsPath, byID, encodeGetRequest, decodeListingResponse),
		UpdateEndpoint:  newEndpoint(http.MethodPut, listingsPath, byID, encodeUpdateRequest, decodeListingResponse),
		DeleteEndpoint:  newEndpoint(http.MethodDelete, listingsPath, byID, encodeDeleteRequest, decodeDeleteResponse),
		SearchEndpoint:  newEndpoint(http.MethodGet, listingsPath, listingsPath, encodeSearchRequest, decodeSearchResponse),
		ChangesEndpoint: newEndpoint(http.MethodGet, changesPath, changesPath, encodeChangesRequest, decodeChangesResponse),
		ReadyEndpoint:   newEndpoint(http.MethodGet, readyPath, readyPath, encodeReadyRequest, decodeReadyResponse),
	}, nil
}

// instanceURL reads an instance as Consul gives it ("host:port") or as a
// person writes it (a base URL, possibly under a path prefix).
func instanceURL(instance string) (*url.URL, error) {
	s := instance
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("listing service instance %q: %w", instance, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("listing service instance %q: want host:port or an http(s) base URL", instance)
	}
	return u, nil
}

// transportErrors makes every endpoint error of e a *TransportError naming
// the route and the instance: a Set's endpoints fail only when no usable
// answer came (business errors are responses).
func transportErrors(instance, op string, e endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		resp, err := e(ctx, req)
		if err == nil {
			return resp, nil
		}
		// The URL of a failed call goes into logs with the error: not
		// its query, which holds what staff searched for.
		var ue *url.Error
		if errors.As(err, &ue) {
			if base, _, ok := strings.Cut(ue.URL, "?"); ok {
				ue.URL = base + "?…"
			}
		}
		var te *TransportError
		if !errors.As(err, &te) {
			te = &TransportError{Err: err}
		}
		te.Op, te.Instance = op, instance
		return nil, te
	}
}

// TransportError is a call to a listing service instance that got no
// usable answer: the connection failed or timed out, the instance said it
// cannot serve now (503), something answered 5xx without the service's
// error body, or the answer could not be read. The instance may or may not
// have acted on the request.
//
// It is what a load balancer retries on another instance: reads always;
// writes only when Refused, since a write that reached an instance may
// have been applied. apierror.CodeOf gives Timeout when the deadline
// passed, the code of the 503's error body, or Unavailable; apierror.Public
// gives a message without the instance or the cause, which are for logs.
type TransportError struct {
	Op       string // the route called, e.g. "GET /v1/listings/{id}"
	Instance string // the instance, as given to NewHTTPClient
	Status   int    // the answer's HTTP status; 0 when none came
	Err      error  // the cause

	api *apierror.Error // the 503's own error body, if it had one
}

func (e *TransportError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("listing service %s: %s: answered %d: %v", e.Instance, e.Op, e.Status, e.Err)
	}
	return fmt.Sprintf("listing service %s: %s: %v", e.Instance, e.Op, e.Err)
}

// Unwrap gives the cause (errors.Is(err, context.DeadlineExceeded) works)
// and the *apierror.Error a caller may pass on.
func (e *TransportError) Unwrap() []error { return []error{e.Err, e.public()} }

func (e *TransportError) public() *apierror.Error {
	switch {
	case e.api != nil:
		return e.api
	case e.timedOut():
		return apierror.New(apierror.Timeout, "the listing service did not answer in time")
	}
	return apierror.New(apierror.Unavailable, "the listing service is unavailable")
}

func (e *TransportError) timedOut() bool {
	if e.Status == http.StatusGatewayTimeout || errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// Refused reports whether the request never reached the instance (the
// connection could not be made), so that even a write may be sent to
// another instance without risk of applying it twice.
func (e *TransportError) Refused() bool {
	var op *net.OpError
	return e.Status == 0 && errors.As(e.Err, &op) && op.Op == "dial"
}

// IsTransport reports whether err is (or wraps) a *TransportError: the
// call got no usable answer and another instance may give one. A business
// error (NotFound, Invalid, PreconditionFailed, …) is not: every instance
// would give the same verdict.
func IsTransport(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}
