package parkapi

import (
	"net/http"
	"time"

	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// generatePeeringToken answers POST /api/v1/peerings/tokens: a one-time
// token another park establishes a peering with.
func (a *API) generatePeeringToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Peer string `json:"peer"`
		TTL  string `json:"ttl"`
	}
	if err := httpjson.DecodeSmall(r, &req); err != nil {
		apierror.Write(w, err)
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			apierror.Write(w, apierror.InvalidField("ttl", "must be a duration such as 24h"))
			return
		}
		ttl = d
	}
	tok, exp, err := a.Peering.GenerateToken(r.Context(), req.Peer, ttl)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, map[string]any{"token": tok, "peer": req.Peer, "expires_at": exp})
}

// establishPeering answers POST /api/v1/peerings: this park establishes a
// peering with another park's token.
func (a *API) establishPeering(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := httpjson.DecodeSmall(r, &req); err != nil {
		apierror.Write(w, err)
		return
	}
	p, err := a.Peering.Establish(r.Context(), req.Token)
	if err != nil {
		a.Logger.WarnContext(r.Context(), "peering refused", "err", err)
		apierror.Write(w, err)
		return
	}
	a.Logger.InfoContext(r.Context(), "peering established", "peer", p.ID, "url", p.URL)
	httpjson.Write(w, http.StatusCreated, map[string]any{"park": p.ID, "url": p.URL, "established_at": p.EstablishedAt})
}

// deletePeering answers DELETE /api/v1/peerings/{peer}.
func (a *API) deletePeering(w http.ResponseWriter, r *http.Request) {
	ok, err := a.Peers.Delete(r.Context(), r.PathValue("peer"))
	if err != nil {
		apierror.Write(w, apierror.New(apierror.Unavailable, "cannot delete the peering: Consul unreachable"))
		return
	}
	if !ok {
		apierror.Write(w, apierror.New(apierror.NotFound, "no peering with %q", httpjson.Clip(r.PathValue("peer"))))
		return
	}
	a.Club.SyncPeers()
	a.Logger.InfoContext(r.Context(), "peering deleted", "peer", r.PathValue("peer"))
	w.WriteHeader(http.StatusNoContent)
}

// peers answers GET /api/v1/peers: every peer's health, breaker and feed.
func (a *API) peers(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]any{"park": a.Park, "peers": a.Club.PeerViews()})
}
