package listingservice

import (
	"context"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Set holds one go-kit endpoint per Service method, and is itself a
// Service: NewSet makes it from a Service for the server, NewHTTPClientSet
// from an instance's address for a caller (go-kit addsvc's habit). Business
// failures travel in the responses (Failed), so they never look like a
// transport fault to a circuit breaker or a retrying balancer; a non-nil
// endpoint error means infrastructure (see TransportError).
type Set struct {
	CreateEndpoint  endpoint.Endpoint
	GetEndpoint     endpoint.Endpoint
	UpdateEndpoint  endpoint.Endpoint
	DeleteEndpoint  endpoint.Endpoint
	SearchEndpoint  endpoint.Endpoint
	ChangesEndpoint endpoint.Endpoint
	ReadyEndpoint   endpoint.Endpoint
}

// Failer is implemented by responses that may carry a business error.
type Failer interface{ Failed() error }

// NewSet wires svc's methods into endpoints.
func NewSet(svc Service) Set {
	return Set{
		CreateEndpoint: func(ctx context.Context, req any) (any, error) {
			l, err := svc.Create(ctx, req.(createRequest).Listing)
			return listingResponse{Listing: l, Err: err, Created: true}, nil
		},
		GetEndpoint: func(ctx context.Context, req any) (any, error) {
			l, err := svc.Get(ctx, req.(getRequest).ID)
			return listingResponse{Listing: l, Err: err}, nil
		},
		UpdateEndpoint: func(ctx context.Context, req any) (any, error) {
			r := req.(updateRequest)
			l, err := svc.Update(ctx, r.ID, r.Listing, r.IfVersion)
			return listingResponse{Listing: l, Err: err}, nil
		},
		DeleteEndpoint: func(ctx context.Context, req any) (any, error) {
			r := req.(deleteRequest)
			return deleteResponse{Err: svc.Delete(ctx, r.ID, r.IfVersion)}, nil
		},
		SearchEndpoint: func(ctx context.Context, req any) (any, error) {
			p, err := svc.Search(ctx, req.(listing.Query))
			return searchResponse{Page: p, Err: err}, nil
		},
		ChangesEndpoint: func(ctx context.Context, req any) (any, error) {
			r := req.(changesRequest)
			if !r.Since.IsZero() {
				after, err := svc.SeqBefore(ctx, r.Since)
				if err != nil {
					return changesResponse{Err: err}, nil
				}
				r.After = after
			}
			p, err := svc.Changes(ctx, r.After, r.Limit, r.Wait)
			return changesResponse{Page: p, Err: err}, nil
		},
		ReadyEndpoint: func(ctx context.Context, _ any) (any, error) {
			return readyResponse{Err: svc.Ready(ctx)}, nil
		},
	}
}

var _ Service = Set{}

// Create calls CreateEndpoint.
func (s Set) Create(ctx context.Context, l *listing.Listing) (*listing.Listing, error) {
	resp, err := s.CreateEndpoint(ctx, createRequest{Listing: l})
	if err != nil {
		return nil, err
	}
	r := resp.(listingResponse)
	return r.Listing, r.Err
}

// Get calls GetEndpoint.
func (s Set) Get(ctx context.Context, id string) (*listing.Listing, error) {
	resp, err := s.GetEndpoint(ctx, getRequest{ID: id})
	if err != nil {
		return nil, err
	}
	r := resp.(listingResponse)
	return r.Listing, r.Err
}

// Update calls UpdateEndpoint.
func (s Set) Update(ctx context.Context, id string, l *listing.Listing, ifVersion int64) (*listing.Listing, error) {
	resp, err := s.UpdateEndpoint(ctx, updateRequest{ID: id, IfVersion: ifVersion, Listing: l})
	if err != nil {
		return nil, err
	}
	r := resp.(listingResponse)
	return r.Listing, r.Err
}

// Delete calls DeleteEndpoint.
func (s Set) Delete(ctx context.Context, id string, ifVersion int64) error {
	resp, err := s.DeleteEndpoint(ctx, deleteRequest{ID: id, IfVersion: ifVersion})
	if err != nil {
		return err
	}
	return resp.(deleteResponse).Err
}

// Search calls SearchEndpoint.
func (s Set) Search(ctx context.Context, q listing.Query) (*listing.Page, error) {
	resp, err := s.SearchEndpoint(ctx, q)
	if err != nil {
		return nil, err
	}
	r := resp.(searchResponse)
	return r.Page, r.Err
}

// Changes calls ChangesEndpoint.
func (s Set) Changes(ctx context.Context, after int64, limit int, wait time.Duration) (*ChangesPage, error) {
	resp, err := s.ChangesEndpoint(ctx, changesRequest{After: after, Limit: limit, Wait: wait})
	if err != nil {
		return nil, err
	}
	r := resp.(changesResponse)
	return r.Page, r.Err
}

// SeqBefore calls ChangesEndpoint with Since: the wire has no route of its
// own for it (GET /v1/changes?since=… answers the position in "from"), and
// one route per question keeps the service's API as DESIGN.md pins it.
func (s Set) SeqBefore(ctx context.Context, t time.Time) (int64, error) {
	resp, err := s.ChangesEndpoint(ctx, changesRequest{Since: t, Limit: 1})
	if err != nil {
		return 0, err
	}
	r := resp.(changesResponse)
	if r.Err != nil {
		return 0, r.Err
	}
	return r.Page.From, nil
}

// Ready calls ReadyEndpoint.
func (s Set) Ready(ctx context.Context) error {
	resp, err := s.ReadyEndpoint(ctx, nil)
	if err != nil {
		return err
	}
	return resp.(readyResponse).Err
}

type createRequest struct{ Listing *listing.Listing }

type getRequest struct{ ID string }

type updateRequest struct {
	ID        string
	IfVersion int64
	Listing   *listing.Listing
}

type deleteRequest struct {
	ID        string
	IfVersion int64
}

type changesRequest struct {
	After int64
	Since time.Time // when set, After is the position of this time
	Limit int
	Wait  time.Duration
}

type listingResponse struct {
	Listing *listing.Listing
	Err     error
	Created bool
}

func (r listingResponse) Failed() error { return r.Err }

type deleteResponse struct{ Err error }

func (r deleteResponse) Failed() error { return r.Err }

type searchResponse struct {
	Page *listing.Page
	Err  error
}

func (r searchResponse) Failed() error { return r.Err }

type changesResponse struct {
	Page *ChangesPage
	Err  error
}

func (r changesResponse) Failed() error { return r.Err }

type readyResponse struct{ Err error }

func (r readyResponse) Failed() error { return r.Err }
