package parkapi

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/gateway/webhook"
	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// createWebhook answers POST /api/v1/webhooks.
func (a *API) createWebhook(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL    string            `json:"url"`
		Secret string            `json:"secret"`
		Filter map[string]string `json:"filter"`
	}
	if err := httpjson.DecodeSmall(r, &req); err != nil {
		apierror.Write(w, err)
		return
	}
	v := url.Values{}
	for k, val := range req.Filter {
		v.Set(k, val)
	}
	filter, err := feed.ParseFilter(v)
	if err != nil {
		if e := apierror.Public(err); e.Field != "" {
			e2 := *e
			e2.Field = "filter." + e.Field
			err = &e2
		}
		apierror.Write(w, err)
		return
	}
	h, err := a.Webhooks.Create(r.Context(), req.URL, req.Secret, filter)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, h)
}

// listWebhooks answers GET /api/v1/webhooks (secrets are shown only once,
// at creation).
func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request) {
	hooks, err := a.Webhooks.List(r.Context())
	if err != nil {
		apierror.Write(w, err)
		return
	}
	for i := range hooks {
		hooks[i].Secret = ""
	}
	if hooks == nil {
		hooks = []webhook.Webhook{}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"webhooks": hooks})
}

// deleteWebhook answers DELETE /api/v1/webhooks/{id}.
func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	err := a.Webhooks.State.DeleteWebhook(r.Context(), r.PathValue("id"))
	if errors.Is(err, state.ErrNotFound) {
		apierror.Write(w, apierror.New(apierror.NotFound, "no webhook %q", httpjson.Clip(r.PathValue("id"))))
		return
	}
	if err != nil {
		apierror.Write(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deliveries answers GET /api/v1/webhooks/{id}/deliveries.
func (a *API) deliveries(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	switch status {
	case "", state.Pending, state.Delivered, state.Dead:
	default:
		apierror.Write(w, apierror.InvalidField("status", "must be pending, delivered or dead"))
		return
	}
	out, err := a.Webhooks.Deliveries(r.Context(), r.PathValue("id"), status)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"deliveries": out})
}
