// Package listingservice is the listing service that the directory, project
// and talent services share: each serves one listing kind over the same REST
// paths (DESIGN.md "Listings"), backed by its own listing.Store. The layers
// follow go-kit's examples: Service (this file), endpoints (endpoint.go),
// HTTP transport (transport.go), and a Main (main.go) that the services' cmd
// packages run; Main composes the HTTP middlewares (tracing, logging,
// metrics) from pkg/telemetry and pkg/httpserver.
//
// The client half lives here too, as in go-kit's addsvc: NewHTTPClient
// (client.go) returns the same Service over HTTP, its requests and answers
// encoded next to the server's in transport.go, so the service's paths and
// wire shapes are written once. Its errors tell the service's verdicts
// (*apierror.Error) from failures to get one (*TransportError).
package listingservice

import (
	"context"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Service manages one kind of listing in one park.
type Service interface {
	// Create validates and stores a new listing; the server chooses id,
	// park, version and times. Invalid names the offending field.
	Create(ctx context.Context, l *listing.Listing) (*listing.Listing, error)
	// Get returns a listing, or NotFound.
	Get(ctx context.Context, id string) (*listing.Listing, error)
	// Update replaces listing id. ifVersion 0 means unconditional; otherwise
	// a stale version gives PreconditionFailed. NotFound, Invalid as above.
	Update(ctx context.Context, id string, l *listing.Listing, ifVersion int64) (*listing.Listing, error)
	// Delete removes listing id (ifVersion as in Update).
	Delete(ctx context.Context, id string, ifVersion int64) error
	// Search returns one page of matching listings; Invalid for a bad cursor.
	Search(ctx context.Context, q listing.Query) (*listing.Page, error)
	// Changes reads the changes of current state after seq: up to limit
	// listings (limit ≤ 0: DefaultChanges) whose latest change is after
	// seq, each once, in its current state or as a tombstone, with who
	// could ever see it (listing.Change). It waits up to wait for one to
	// land when there are none yet.
	Changes(ctx context.Context, after int64, limit int, wait time.Duration) (*ChangesPage, error)
	// SeqBefore is the position of a point in time: reading after it
	// yields every listing changed from then on.
	SeqBefore(ctx context.Context, t time.Time) (int64, error)
	// Ready reports whether the service can serve (its store answers).
	Ready(ctx context.Context) error
}

// ChangesPage is an answer of a changes read. From is the position read
// after; Next is the value of `after` for the following call.
type ChangesPage struct {
	Changes []listing.Change `json:"changes"`
	From    int64            `json:"from"`
	Next    int64            `json:"next"`
}

type service struct {
	kind     listing.Kind
	park     string
	store    listing.Store
	now      func() time.Time
	draining <-chan struct{}
}

// Option changes a Service.
type Option func(*service)

// WithDraining ends change-log long-polls as soon as draining is closed
// (the server is shutting down), so a graceful shutdown need not wait out
// their wait.
func WithDraining(draining <-chan struct{}) Option {
	return func(s *service) { s.draining = draining }
}

// New returns the Service for kind in park, keeping listings in store.
func New(kind listing.Kind, park string, store listing.Store, opts ...Option) Service {
	s := &service{kind: kind, park: park, store: store, now: func() time.Time { return time.Now().UTC() }}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *service) checkID(id string) error {
	if !listing.ValidID(s.kind, id) {
		return apierror.New(apierror.NotFound, "no %s listing %q", s.kind, clip(id))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (s *service) Create(ctx context.Context, l *listing.Listing) (*listing.Listing, error) {
	l.Normalize()
	if err := l.Validate(s.kind); err != nil {
		return nil, err
	}
	now := s.now()
	l.ID = listing.NewID(s.kind, now)
	l.Park, l.Kind, l.Version = s.park, s.kind, 1
	l.CreatedAt, l.UpdatedAt = now, now
	if err := s.store.Create(ctx, l); err != nil {
		return nil, err
	}
	return l, nil
}

func (s *service) Get(ctx context.Context, id string) (*listing.Listing, error) {
	if err := s.checkID(id); err != nil {
		return nil, err
	}
	return s.store.Get(ctx, id)
}

func (s *service) Update(ctx context.Context, id string, l *listing.Listing, ifVersion int64) (*listing.Listing, error) {
	if err := s.checkID(id); err != nil {
		return nil, err
	}
	if l.ID != "" && l.ID != id {
		return nil, apierror.InvalidField("id", "does not match the listing in the path")
	}
	l.Normalize()
	if err := l.Validate(s.kind); err != nil {
		return nil, err
	}
	l.ID, l.Kind, l.UpdatedAt = id, s.kind, s.now()
	if err := s.store.Update(ctx, l, ifVersion); err != nil {
		return nil, err
	}
	return l, nil
}

func (s *service) Delete(ctx context.Context, id string, ifVersion int64) error {
	if err := s.checkID(id); err != nil {
		return err
	}
	_, err := s.store.Delete(ctx, id, ifVersion, s.now())
	return err
}

func (s *service) Search(ctx context.Context, q listing.Query) (*listing.Page, error) {
	return s.store.Search(ctx, q)
}

func (s *service) Changes(ctx context.Context, after int64, limit int, wait time.Duration) (*ChangesPage, error) {
	if limit <= 0 {
		// What the HTTP route does without ?limit, so a caller in process
		// and one over HTTP (whose client then omits it) read alike.
		limit = DefaultChanges
	}
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		// Take the signal before reading so a commit in between is not missed.
		signal := s.store.ChangeSignal()
		changes, err := s.store.Changes(ctx, after, limit)
		if err != nil {
			return nil, err
		}
		if len(changes) > 0 || wait <= 0 {
			next := after
			if n := len(changes); n > 0 {
				next = changes[n-1].Seq
			}
			return &ChangesPage{Changes: changes, From: after, Next: next}, nil
		}
		select {
		case <-signal:
		case <-timeout:
			wait = 0
		case <-s.draining:
			wait = 0
		case <-ctx.Done():
			return &ChangesPage{Changes: []listing.Change{}, From: after, Next: after}, nil
		}
	}
}

func (s *service) SeqBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.store.SeqBefore(ctx, t)
}

func (s *service) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return apierror.New(apierror.Unavailable, "store unreachable")
	}
	return nil
}
