package parkapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/interests"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// interestRoutes registers the interests: editors send and answer,
// viewers read, admins read the audit trail.
func (a *API) interestRoutes(handle func(string, parktoken.Role, http.HandlerFunc)) {
	handle("POST /api/v1/interests", parktoken.Editor, a.bounded(http.HandlerFunc(a.sendInterest)))
	handle("GET /api/v1/interests", parktoken.Viewer, a.bounded(http.HandlerFunc(a.listInterests)))
	handle("GET /api/v1/interests/stream", parktoken.Viewer, a.interestStream)
	handle("GET /api/v1/interests/{id}", parktoken.Viewer, a.bounded(http.HandlerFunc(a.getInterest)))
	handle("GET /api/v1/interests/{id}/audit", parktoken.Admin, a.bounded(http.HandlerFunc(a.interestAudit)))
	handle("POST /api/v1/interests/{id}/accept", parktoken.Editor, a.bounded(a.answerInterest(true)))
	handle("POST /api/v1/interests/{id}/decline", parktoken.Editor, a.bounded(a.answerInterest(false)))
	handle("POST /api/v1/interests/{id}/withdraw", parktoken.Editor, a.bounded(http.HandlerFunc(a.withdrawInterest)))
}

// subject is who acts: the park-local principal of the request.
func subject(r *http.Request) string {
	if c := claimsOf(r); c != nil {
		return c.Subject
	}
	return ""
}

// sendInterest serves POST /api/v1/interests. With an Idempotency-Key,
// the same request again (a double click, a retry after a timeout) is
// answered 200 with the interest the first one made, marked
// Idempotent-Replayed; 201 means a new interest.
func (a *API) sendInterest(w http.ResponseWriter, r *http.Request) {
	keys := r.Header.Values("Idempotency-Key")
	if len(keys) > 1 {
		apierror.Write(w, apierror.InvalidField("Idempotency-Key", "must be given once"))
		return
	}
	key := ""
	if len(keys) == 1 {
		if key = keys[0]; key == "" {
			apierror.Write(w, apierror.InvalidField("Idempotency-Key", "must not be empty"))
			return
		}
	}
	var req interests.SendRequest
	if err := httpjson.DecodeSmall(r, &req); err != nil {
		apierror.Write(w, err)
		return
	}
	in, replayed, err := a.Interests.Send(r.Context(), subject(r), key, req)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/interests/"+in.ID)
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		httpjson.Write(w, http.StatusOK, in)
		return
	}
	httpjson.Write(w, http.StatusCreated, in)
}

// interestList is the answer of GET /api/v1/interests; next_before pages
// on (created_at of the last one) when the page was full.
type interestList struct {
	Interests  []*interests.Interest `json:"interests"`
	NextBefore string                `json:"next_before,omitempty"`
}

func (a *API) listInterests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var req interests.ListRequest
	for name := range q {
		switch name {
		case "box", "status", "limit", "before":
		default:
			apierror.Write(w, apierror.InvalidField(httpjson.Clip(name), "is not a parameter of this list (box, status, limit, before)"))
			return
		}
	}
	req.Box, req.Status = q.Get("box"), interests.Status(q.Get("status"))
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			apierror.Write(w, apierror.InvalidField("limit", "must be a positive integer"))
			return
		}
		req.Limit = n
	}
	if s := q.Get("before"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			apierror.Write(w, apierror.InvalidField("before", "must be an RFC 3339 time"))
			return
		}
		req.Before = t
	}
	list, err := a.Interests.List(r.Context(), req)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	ans := interestList{Interests: list}
	if req.Limit > 0 && len(list) == req.Limit || req.Limit == 0 && len(list) == 50 {
		ans.NextBefore = list[len(list)-1].CreatedAt.Format(time.RFC3339Nano)
	}
	httpjson.Write(w, http.StatusOK, ans)
}

func (a *API) getInterest(w http.ResponseWriter, r *http.Request) {
	in, err := a.Interests.Get(r.Context(), subject(r), r.PathValue("id"))
	if err != nil {
		apierror.Write(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, in)
}

func (a *API) interestAudit(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	entries, err := a.Interests.Audit(r.Context(), id)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"id": id, "audit": entries})
}

// decodeOptional reads a small JSON body into v unless there is none.
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return httpjson.DecodeSmall(r, v)
}

func (a *API) answerInterest(accept bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req interests.AnswerRequest
		if err := decodeOptional(r, &req); err != nil {
			apierror.Write(w, err)
			return
		}
		in, err := a.Interests.Answer(r.Context(), subject(r), r.PathValue("id"), accept, req)
		if err != nil {
			apierror.Write(w, err)
			return
		}
		httpjson.Write(w, http.StatusOK, in)
	}
}

func (a *API) withdrawInterest(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Note string `json:"note"`
	}
	if err := decodeOptional(r, &req); err != nil {
		apierror.Write(w, err)
		return
	}
	in, err := a.Interests.Withdraw(r.Context(), subject(r), r.PathValue("id"), req.Note)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, in)
}

// interestStream serves GET /api/v1/interests/stream: the park's interest
// events (CloudEvents JSON) as SSE, resumable with Last-Event-ID; without
// one it starts at the newest (only what happens next).
func (a *API) interestStream(w http.ResponseWriter, r *http.Request) {
	release, ok := a.acquireStream(w, r)
	if !ok {
		return
	}
	defer release()
	for name := range r.URL.Query() {
		if name != "last_event_id" {
			apierror.Write(w, apierror.InvalidField(httpjson.Clip(name), "is not a parameter of this stream"))
			return
		}
	}
	last := lastEventID(r)
	var pos interests.Position
	if last != "" {
		p, ok := interests.ParsePosition(last)
		if !ok {
			apierror.Write(w, apierror.InvalidField("Last-Event-ID", "is not a position of this stream"))
			return
		}
		pos = p
	} else {
		head, err := a.Interests.Head(r.Context())
		if err != nil {
			apierror.Write(w, err)
			return
		}
		pos = head
	}
	s, err := sse.Start(w, r, a.FeedOptions.WriteTimeout)
	if err != nil {
		return
	}
	// Say where the stream starts, so a reconnect before the first event
	// resumes from here.
	if err := s.Event(pos.String(), "position", []byte("{}")); err != nil || s.Flush() != nil {
		return
	}
	feed.Serve(r.Context(), s, feed.Source[interests.Position](interests.Stream{S: a.Interests}), pos, a.FeedOptions, nil)
}
