package parkapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// search answers GET /api/v1/search: scope local (the park's services) or
// club (this park and its peers, gateway/clubsearch).
func (a *API) search(w http.ResponseWriter, r *http.Request) {
	sr, err := search.ParseRequest(r.URL.Query())
	if err != nil {
		apierror.Write(w, err)
		return
	}
	if sr.Scope == search.ScopeClub {
		if a.Club == nil {
			apierror.Write(w, apierror.InvalidField("scope", "club search is not enabled on this gateway"))
			return
		}
		resp, err := a.Club.Search(r.Context(), sr)
		if err != nil {
			apierror.Write(w, err)
			return
		}
		httpjson.Write(w, http.StatusOK, resp)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout())
	defer cancel()
	start := time.Now()
	page, err := a.Local.Search(ctx, sr.Query, sr.Kinds, "")
	if err != nil {
		apierror.Write(w, err)
		return
	}
	resp := search.Response{Results: page.Results, NextCursor: page.Next,
		Facets: page.Facets, FacetsCapped: page.FacetsCapped, FacetsPartial: page.FacetsPartial}
	st := search.ParkStatus{Park: a.Park, Status: search.StatusOK, TookMS: time.Since(start).Milliseconds(), Hits: len(page.Results)}
	if len(page.Failures) > 0 {
		st.Status, st.Error = search.StatusError, strings.Join(page.Failures, "; ")
		resp.Partial = true
	}
	resp.Parks.Add(st)
	httpjson.Write(w, http.StatusOK, resp)
}
