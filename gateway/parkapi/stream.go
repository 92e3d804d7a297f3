package parkapi

import (
	"net/http"

	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// stream serves GET /api/v1/stream for park staff: the park's own changes
// and every peer's, filtered, as SSE with CloudEvents data. Without a
// Last-Event-ID it starts at the newest position (only what happens next).
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	// Per credential: the token's id (every token has one; a token
	// without would share the empty key, capped all the same).
	holder := ""
	if c := claimsOf(r); c != nil {
		holder = c.ID
	}
	release, ok := a.StreamCaps.Acquire(holder)
	if !ok {
		a.Logger.WarnContext(r.Context(), "stream refused: cap reached", "limit", "streams_per_token", "token_id", holder, "max", a.StreamCaps.Max)
		if a.Limited != nil {
			a.Limited("streams_per_token")
		}
		a.StreamCaps.Refuse(w, "this token")
		return
	}
	defer release()
	filter, err := feed.ParseFilter(r.URL.Query())
	if err != nil {
		apierror.Write(w, err)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	// The start is fixed before the stream answers: a subscriber that acts
	// once it sees the answer must find its action after the start.
	const resync = "reconnect without Last-Event-ID and search with updated_since to catch up"
	var fail *sse.StreamError
	// A just-started gateway knows the heads only once it has read its
	// logs: wait for that, or ask the subscriber to come back.
	if err := a.Stream.Feed.WaitReady(r.Context(), feed.ReadyWait); err != nil {
		fail = &sse.StreamError{Code: "unavailable", Message: "this gateway is still reading the park's change logs; reconnect to resume", ResumeID: last}
	}
	pos := a.Stream.Head(r.Context())
	if last != "" && fail == nil {
		p, err := feed.ParseStreamPosition(last)
		switch {
		case err != nil:
			fail = &sse.StreamError{Code: "invalid_last_event_id", Message: "Last-Event-ID is not an id of this stream; nothing was resumed", Resync: resync}
		case p.After(pos):
			fail = &sse.StreamError{Code: "cannot_resume", Message: "Last-Event-ID is ahead of this gateway's stream", Resync: resync}
		default:
			pos = p
		}
	}
	s, err := sse.Start(w, r, a.FeedOptions.WriteTimeout)
	if err != nil {
		return
	}
	if fail != nil {
		s.Fail(*fail)
		return
	}
	feed.Serve(r.Context(), s, feed.Source[feed.StreamPosition](a.Stream), pos, a.FeedOptions, func(it feed.Item[feed.StreamPosition]) bool {
		return filter.Match(it.Park, it.Event)
	})
}
