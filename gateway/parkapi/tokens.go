package parkapi

import (
	"net/http"

	"github.com/parkmesh/parkmesh/gateway/credentials"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// listTokens answers GET /api/v1/tokens: the park-local tokens recorded,
// newest first, unexpired ones unless ?all=true. Tokens themselves are
// never stored, only what they say.
func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	all := false
	switch v := r.URL.Query().Get("all"); v {
	case "", "false":
	case "true":
		all = true
	default:
		apierror.Write(w, apierror.InvalidField("all", "must be true or false"))
		return
	}
	toks, err := a.Credentials.List(r.Context(), all)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	if toks == nil {
		toks = []state.LocalToken{}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"tokens": toks})
}

// getToken answers GET /api/v1/tokens/{id}.
func (a *API) getToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !credentials.ValidID(id) {
		apierror.Write(w, apierror.InvalidField("id", "is not a token id"))
		return
	}
	t, err := a.Credentials.Get(r.Context(), id)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, t)
}

// revokeToken answers DELETE /api/v1/tokens/{id}: the token is refused
// from now on by every replica of the gateway. An id never recorded is
// revoked all the same (recorded: false says so).
func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rev, recorded, err := a.Credentials.Revoke(r.Context(), id)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	by := ""
	if c := claimsOf(r); c != nil {
		by = c.Subject
	}
	a.Logger.InfoContext(r.Context(), "park-local token revoked", "token_id", id, "recorded", recorded, "by", by)
	httpjson.Write(w, http.StatusOK, map[string]any{"id": rev.ID, "revoked_at": rev.RevokedAt, "expires_at": rev.ExpiresAt, "recorded": recorded})
}
