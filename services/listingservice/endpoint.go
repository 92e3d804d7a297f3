package listingservice

import (
	"context"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Set holds one go-kit endpoint per Service method. Business failures
// travel in the responses (Failed), so they never look like a transport
// fault to a circuit breaker; a non-nil endpoint error means infrastructure.
type Set struct {
	Create  endpoint.Endpoint
	Get     endpoint.Endpoint
	Update  endpoint.Endpoint
	Delete  endpoint.Endpoint
	Search  endpoint.Endpoint
	Changes endpoint.Endpoint
	Ready   endpoint.Endpoint
}

// Failer is implemented by responses that may carry a business error.
type Failer interface{ Failed() error }

// NewSet wires svc's methods into endpoints.
func NewSet(svc Service) Set {
	return Set{
		Create: func(ctx context.Context, req any) (any, error) {
			l, err := svc.Create(ctx, req.(createRequest).Listing)
			return listingResponse{Listing: l, Err: err, Created: true}, nil
		},
		Get: func(ctx context.Context, req any) (any, error) {
			l, err := svc.Get(ctx, req.(getRequest).ID)
			return listingResponse{Listing: l, Err: err}, nil
		},
		Update: func(ctx context.Context, req any) (any, error) {
			r := req.(updateRequest)
			l, err := svc.Update(ctx, r.ID, r.Listing, r.IfVersion)
			return listingResponse{Listing: l, Err: err}, nil
		},
		Delete: func(ctx context.Context, req any) (any, error) {
			r := req.(deleteRequest)
			return deleteResponse{Err: svc.Delete(ctx, r.ID, r.IfVersion)}, nil
		},
		Search: func(ctx context.Context, req any) (any, error) {
			p, err := svc.Search(ctx, req.(listing.Query))
			return searchResponse{Page: p, Err: err}, nil
		},
		Changes: func(ctx context.Context, req any) (any, error) {
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
		Ready: func(ctx context.Context, _ any) (any, error) {
			return readyResponse{Err: svc.Ready(ctx)}, nil
		},
	}
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
