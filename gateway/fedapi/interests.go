package fedapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/interests"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// receiveInterest serves POST /federation/v1/interests: a peer's
// expression of interest in one of this park's listings. 201 when taken
// now, 200 when it was taken before (the sender's retry), 404 naming the
// listing when the peer may not see it now, 429 with Retry-After over the
// peer's rate. Unknown fields are refused: nothing else may cross.
func (f *API) receiveInterest(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims) {
	if mt := r.Header.Get("Content-Type"); mt != "" && !strings.HasPrefix(mt, "application/json") {
		apierror.Write(w, apierror.InvalidField("Content-Type", "must be application/json"))
		return
	}
	var m interests.Message
	if err := httpjson.DecodeSmall(r, &m); err != nil {
		apierror.Write(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout())
	defer cancel()
	rec, created, err := f.Interests.Receive(ctx, c.Issuer, m)
	var limited *interests.RateLimitedError
	if errors.As(err, &limited) {
		f.Logger.WarnContext(r.Context(), "interest refused: peer over its rate", "limit", "interests_per_peer", "peer", c.Issuer)
		if f.Limited != nil {
			f.Limited("interests_per_peer")
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(limited.RetryAfter.Seconds())+1))
	}
	if err != nil {
		apierror.Write(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpjson.Write(w, status, rec)
}

// interestStatus serves POST /federation/v1/interests/{id}/status: the
// owner park's answer, or the sender park's withdrawal.
func (f *API) interestStatus(w http.ResponseWriter, r *http.Request, c *parktoken.FederationClaims) {
	var m interests.StatusMessage
	if err := httpjson.DecodeSmall(r, &m); err != nil {
		apierror.Write(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), f.timeout())
	defer cancel()
	ans, err := f.Interests.ReceiveStatus(ctx, c.Issuer, r.PathValue("id"), m)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, ans)
}
