package clubsearch

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sony/gobreaker"
	"go.opentelemetry.io/otel/baggage"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Where a listing answer came from.
const (
	SourceOrigin = "origin" // asked of the listing's park just now
	SourceIndex  = "index"  // the club index's copy (the origin did not answer)
)

// ListingAnswer is one listing of any park this park may see.
type ListingAnswer struct {
	Listing *listing.Listing `json:"listing"`
	Source  string           `json:"source"`
	// Stale is true when the origin did not answer and the copy is the
	// last one the club index received; AsOf says when that was known
	// current.
	Stale bool       `json:"stale"`
	AsOf  *time.Time `json:"as_of,omitempty"`
}

// peerListingBudget bounds asking a peer for one listing before falling
// back to the index's copy.
const peerListingBudget = 2 * time.Second

// PeerListing returns peer's listing id of kind k as this park may see it:
// fresh from the peer when it answers (through its breaker, like searches),
// else the club index's copy marked stale. NotFound when the peer says it
// has none for us, or when it does not answer and the index holds none;
// an unknown park is NotFound too.
func (c *Club) PeerListing(ctx context.Context, peer string, k listing.Kind, id string) (*ListingAnswer, error) {
	p, ok := c.Peers.Get(peer)
	if !ok {
		return nil, apierror.New(apierror.NotFound, "%s is neither this park nor an active peer", peer)
	}
	askCtx, cancel := context.WithTimeout(baggage.ContextWithoutBaggage(ctx), peerListingBudget)
	defer cancel()
	res, err := c.link(peer).breaker.Execute(func() (any, error) {
		l, err := c.askPeerListing(askCtx, p.URL, peer, k, id)
		if apierror.CodeOf(err) == apierror.NotFound {
			return nil, nil // an answer, not a failure of the peer
		}
		return l, err
	})
	if err == nil {
		l, _ := res.(*listing.Listing)
		if l == nil {
			return nil, apierror.New(apierror.NotFound, "no listing %s at %s visible to this park", id, peer)
		}
		return &ListingAnswer{Listing: l, Source: SourceOrigin}, nil
	}
	// The origin did not answer (or its breaker is open): the index's copy.
	if c.Index == nil {
		return nil, apierror.New(apierror.Unavailable, "%s did not answer", peer)
	}
	l, ierr := c.Index.Get(ctx, peer, id)
	if ierr != nil || l.Kind != k {
		if apierror.CodeOf(ierr) == apierror.NotFound || ierr == nil {
			return nil, apierror.New(apierror.Unavailable, "%s did not answer and the club index holds no copy of %s", peer, id)
		}
		return nil, ierr
	}
	ans := &ListingAnswer{Listing: l, Source: SourceIndex, Stale: true}
	if f := c.Index.Freshness(peer); !f.AsOf.IsZero() {
		ans.AsOf = &f.AsOf
	}
	if !errors.Is(err, gobreaker.ErrOpenState) {
		c.Logger.InfoContext(ctx, "peer did not answer a listing read; served the index copy", "peer", peer, "err", err)
	}
	return ans, nil
}

// askPeerListing is GET /federation/v1/listings/{kind}/{id} at a peer.
func (c *Club) askPeerListing(ctx context.Context, base, peer string, k listing.Kind, id string) (*listing.Listing, error) {
	tok, err := parktoken.IssueFederation(c.Keys(), peer, parktoken.ScopeListings, time.Minute, time.Now())
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/federation/v1/listings/"+k.Collection()+"/"+id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, apierror.New(apierror.NotFound, "no such listing")
	default:
		return nil, apierror.New(apierror.Unavailable, "peer answered %d", res.StatusCode)
	}
	var l listing.Listing
	if err := json.NewDecoder(io.LimitReader(res.Body, maxPeerBody)).Decode(&l); err != nil {
		return nil, apierror.New(apierror.Unavailable, "peer's answer is not a listing")
	}
	// A peer answers for itself only, with a well-formed listing.
	if l.Park != peer || l.ID != id || l.Kind != k || l.Validate(k) != nil {
		return nil, apierror.New(apierror.Unavailable, "peer's answer is a malformed listing or another one")
	}
	return &l, nil
}
