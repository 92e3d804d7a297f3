package parkapi

import (
	"net/http"
	"time"

	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// stream serves GET /api/v1/stream for park staff: the park's own changes
// and every peer's, read from the club index (each listing once, in its
// current state), filtered, as SSE with CloudEvents data. Without a
// Last-Event-ID it starts at the newest position (only what happens next).
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	release, ok := a.acquireStream(w, r)
	if !ok {
		return
	}
	defer release()
	filter, err := feed.ParseFilter(r.URL.Query())
	if err != nil {
		apierror.Write(w, err)
		return
	}
	last := lastEventID(r)
	// The start is fixed before the stream answers: a subscriber that acts
	// once it sees the answer must find its action after the start. A
	// start that cannot be served is refused before the stream begins.
	pos, err := a.Index.Resume(r.Context(), last, time.Now())
	if err != nil {
		if apierror.CodeOf(err) == apierror.Unavailable {
			w.Header().Set("Retry-After", "1")
		}
		apierror.Write(w, err)
		return
	}
	s, err := sse.Start(w, r, a.FeedOptions.WriteTimeout)
	if err != nil {
		return
	}
	feed.Serve(r.Context(), s, feed.Source[feed.ClubPosition](clubindex.Stream{Index: a.Index, From: pos, Sent: feed.NewSent()}), pos, a.FeedOptions, func(it feed.Item[feed.ClubPosition]) bool {
		return filter.Match(it.Park, it.Event)
	})
}

// acquireStream takes one of the caller's stream slots for r, per
// credential: the token's id (every token has one; a token without would
// share the empty key, capped all the same). With none left it answers
// the refusal (logged and counted) and reports false.
func (a *API) acquireStream(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	holder := ""
	if c := claimsOf(r); c != nil {
		holder = c.ID
	}
	release, ok = a.StreamCaps.Acquire(holder)
	if !ok {
		a.Logger.WarnContext(r.Context(), "stream refused: cap reached", "limit", "streams_per_token", "token_id", holder, "max", a.StreamCaps.Max)
		if a.Limited != nil {
			a.Limited("streams_per_token")
		}
		a.StreamCaps.Refuse(w, "this token")
	}
	return release, ok
}

// lastEventID is where a resuming client left off: the Last-Event-ID
// header, or the last_event_id parameter of a client that cannot set it
// (a browser's EventSource on its first connection).
func lastEventID(r *http.Request) string {
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		return last
	}
	return r.URL.Query().Get("last_event_id")
}
