package parkapi

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/parkmesh/parkmesh/gateway/discovery"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

func kindOf(r *http.Request) (listing.Kind, error) {
	k, ok := listing.KindOfCollection(r.PathValue("kind"))
	if !ok {
		return "", apierror.New(apierror.NotFound, "no such collection %q; use organizations, projects or talent", httpjson.Clip(r.PathValue("kind")))
	}
	return k, nil
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	a.forward(w, r, k, "/v1/listings")
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	a.forward(w, r, k, "/v1/listings")
}

func (a *API) proxyOne(w http.ResponseWriter, r *http.Request) {
	k, err := kindOf(r)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	a.forward(w, r, k, "/v1/listings/"+r.PathValue("id"))
}

// forward sends the request to a healthy instance of kind k's service and
// relays its answer, rewriting the Location of a created listing.
func (a *API) forward(w http.ResponseWriter, r *http.Request, k listing.Kind, path string) {
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout())
	defer cancel()
	c := discovery.Call{Method: r.Method, Path: path, Query: r.URL.RawQuery, Header: http.Header{}}
	for _, h := range []string{"Content-Type", "If-Match"} {
		if v := r.Header.Get(h); v != "" {
			c.Header.Set(h, v)
		}
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if r.ContentLength > listing.MaxBody {
			apierror.Write(w, apierror.InvalidField("body", "is larger than %d bytes", listing.MaxBody))
			return
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, listing.MaxBody))
		if err != nil {
			apierror.Write(w, apierror.InvalidField("body", "is larger than %d bytes or unreadable", listing.MaxBody))
			return
		}
		c.Body = b
	}
	rep, err := a.Services.Do(ctx, k, c)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	for _, h := range []string{"Content-Type", "ETag"} {
		if v := rep.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if loc := rep.Header.Get("Location"); loc != "" {
		w.Header().Set("Location", "/api/v1/"+k.Collection()+"/"+strings.TrimPrefix(loc, "/v1/listings/"))
	}
	w.WriteHeader(rep.Status)
	w.Write(rep.Body)
}
