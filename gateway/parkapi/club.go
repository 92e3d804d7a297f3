package parkapi

import (
	"context"
	"net/http"

	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// clubListing answers GET /api/v1/club/{park}/{kind}/{id}: any listing the
// park may see, its own (from its services, everything) or a peer's (fresh
// from the peer when it answers, else the club index's copy marked stale).
func (a *API) clubListing(w http.ResponseWriter, r *http.Request) {
	park, seg, id := r.PathValue("park"), r.PathValue("kind"), r.PathValue("id")
	if !listing.ValidParkID(park) {
		apierror.Write(w, apierror.InvalidField("park", "is not a park id"))
		return
	}
	k, ok := listing.KindOfCollection(seg)
	if !ok {
		apierror.Write(w, apierror.InvalidField("kind", "must be organizations, projects or talent"))
		return
	}
	if !listing.ValidID(k, id) {
		apierror.Write(w, apierror.InvalidField("id", "is not an id of %s", k.Collection()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout())
	defer cancel()
	if park == a.Park {
		l, err := a.Services.For(k).Get(ctx, id)
		if err != nil {
			apierror.Write(w, err)
			return
		}
		httpjson.Write(w, http.StatusOK, clubsearch.ListingAnswer{Listing: l, Source: clubsearch.SourceOrigin})
		return
	}
	ans, err := a.Club.PeerListing(ctx, park, k, id)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, ans)
}
