package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// StreamFilter selects the events a park-side subscriber (the stream or a
// webhook) wants. Empty fields select everything.
type StreamFilter struct {
	Kinds   []listing.Kind `json:"kinds,omitempty"`
	Sectors []string       `json:"sectors,omitempty"`
	Seeking []string       `json:"seeking,omitempty"`
	Text    string         `json:"q,omitempty"`
	Parks   []string       `json:"parks,omitempty"`
}

// parseStreamFilter reads a filter from URL parameters.
func parseStreamFilter(v url.Values) (StreamFilter, error) {
	var f StreamFilter
	for name := range v {
		switch name {
		case "kinds", "sectors", "seeking", "q", "parks", "last_event_id":
		default:
			return f, apierror.InvalidField(clip(name), "is not a stream parameter")
		}
	}
	q, err := listing.ParseQuery(url.Values{"sectors": v["sectors"], "seeking": v["seeking"], "q": v["q"]}, "")
	if err != nil {
		return f, err
	}
	f.Sectors, f.Seeking, f.Text = q.Sectors, q.Seeking, strings.ToLower(q.Text)
	if s := v.Get("kinds"); s != "" {
		for _, p := range strings.Split(s, ",") {
			k, ok := kindPaths[p]
			if !ok {
				k = listing.Kind(p)
			}
			if !k.Valid() {
				return f, apierror.InvalidField("kinds", "%q is not organizations, projects or talent", clip(p))
			}
			f.Kinds = append(f.Kinds, k)
		}
	}
	if f.Parks, err = parkList(v, "parks"); err != nil {
		return f, err
	}
	return f, nil
}

// Match reports whether ev passes the filter. A withdrawn event carries no
// content, so only its kind and park are checked.
func (f StreamFilter) Match(park string, ev *CloudEvent) bool {
	if len(f.Parks) > 0 && !slices.Contains(f.Parks, park) {
		return false
	}
	if ev.Type == TypeWithdrawn {
		var w withdrawnData
		json.Unmarshal(ev.Data, &w)
		return len(f.Kinds) == 0 || slices.Contains(f.Kinds, w.Kind)
	}
	var l listing.Listing
	if json.Unmarshal(ev.Data, &l) != nil {
		return false
	}
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, l.Kind) {
		return false
	}
	anyOf := func(want, have []string) bool {
		if len(want) == 0 {
			return true
		}
		for _, w := range want {
			if slices.Contains(have, w) {
				return true
			}
		}
		return false
	}
	if !anyOf(f.Sectors, l.Sectors) || !anyOf(f.Seeking, l.Seeking) {
		return false
	}
	if f.Text != "" {
		text := strings.ToLower(l.Title + "\n" + l.Summary + "\n" + strings.Join(l.Tags, "\n"))
		for _, w := range strings.Fields(f.Text) {
			if !strings.Contains(text, w) {
				return false
			}
		}
	}
	return true
}

// streamPos is a park-side stream position: the local feed's and the
// inbox's ("s1.<org>.<project>.<talent>.<inbox>").
type streamPos struct {
	Local Position
	Inbox int64
}

func (p streamPos) String() string {
	return fmt.Sprintf("s1.%d.%d.%d.%d", p.Local[0], p.Local[1], p.Local[2], p.Inbox)
}

func parseStreamPos(s string) (streamPos, error) {
	var p streamPos
	parts := strings.Split(s, ".")
	if len(parts) != 5 || parts[0] != "s1" {
		return p, apierror.InvalidField("Last-Event-ID", "is not an id of this stream")
	}
	var n [4]int64
	for i := range 4 {
		v, err := strconv.ParseInt(parts[i+1], 10, 64)
		if err != nil || v < 0 {
			return p, apierror.InvalidField("Last-Event-ID", "is not an id of this stream")
		}
		n[i] = v
	}
	p.Local, p.Inbox = Position{n[0], n[1], n[2]}, n[3]
	return p, nil
}

// parkStream merges the park's own changes and its peers' applied events.
type parkStream struct {
	park  string
	feed  *LocalFeed
	inbox *Inbox
}

// streamEvent is one event of the park-side stream.
type streamEvent struct {
	Park  string
	Event *CloudEvent
	After streamPos
}

// next returns the events after pos (local first, then peers'), at most
// limit of each, and the position after everything read.
func (ps *parkStream) next(ctx context.Context, pos streamPos, limit int) ([]streamEvent, streamPos, error) {
	var out []streamEvent
	batch, err := ps.feed.Next(ctx, pos.Local, limit)
	if err != nil {
		return nil, pos, err
	}
	for _, pc := range batch {
		pos.Local = pc.After
		if ev := eventFor(ps.park, pc.Kind, pc.Change, ""); ev != nil {
			out = append(out, streamEvent{Park: ps.park, Event: ev, After: pos})
		}
	}
	evs, err := ps.inbox.After(ctx, pos.Inbox, limit)
	if err != nil {
		return nil, pos, err
	}
	for _, e := range evs {
		pos.Inbox = e.Seq
		ev := e.Event
		out = append(out, streamEvent{Park: e.Park, Event: &ev, After: pos})
	}
	return out, pos, nil
}

// head is the newest position of the park stream.
func (ps *parkStream) head(ctx context.Context) streamPos {
	h, _ := ps.inbox.Head(ctx)
	return streamPos{Local: ps.feed.Head(), Inbox: h}
}

// stream serves GET /api/v1/stream for park staff: the park's own changes
// and every peer's, filtered, as SSE with CloudEvents data. Without a
// Last-Event-ID it starts at the newest position (only what happens next).
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	filter, err := parseStreamFilter(r.URL.Query())
	if err != nil {
		apierror.Write(w, err)
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	s, err := startSSE(w, r, a.FeedOptions.WriteTimeout)
	if err != nil {
		return
	}
	ps := a.Stream
	var pos streamPos
	if last != "" {
		p, err := parseStreamPos(last)
		if err != nil {
			s.fail(StreamError{Code: "invalid_last_event_id", Message: "Last-Event-ID is not an id of this stream; nothing was resumed",
				Resync: "reconnect without Last-Event-ID and search with updated_since to catch up"})
			return
		}
		h := ps.head(r.Context())
		if p.Inbox > h.Inbox || p.Local[0] > h.Local[0] || p.Local[1] > h.Local[1] || p.Local[2] > h.Local[2] {
			s.fail(StreamError{Code: "cannot_resume", Message: "Last-Event-ID is ahead of this gateway's stream",
				Resync: "reconnect without Last-Event-ID and search with updated_since to catch up"})
			return
		}
		pos = p
	} else {
		pos = ps.head(r.Context())
	}
	opts := a.FeedOptions.withDefaults()
	heartbeat := time.NewTicker(opts.Heartbeat)
	defer heartbeat.Stop()
	ctx := r.Context()
	live := false
	var behindSince time.Time // when the subscriber last went more than MaxLag behind
	for ctx.Err() == nil {
		localSig, inboxSig := ps.feed.Signal(), ps.inbox.Signal()
		h := ps.head(ctx)
		lag := (h.Local[0] - pos.Local[0]) + (h.Local[1] - pos.Local[1]) + (h.Local[2] - pos.Local[2]) + (h.Inbox - pos.Inbox)
		if lag == 0 {
			live = true
		}
		if !live || lag <= opts.MaxLag {
			behindSince = time.Time{}
		} else if behindSince.IsZero() {
			behindSince = time.Now()
		}
		// Too slow: still more than MaxLag behind after a whole write
		// timeout of trying (a burst alone does not count).
		if !behindSince.IsZero() && time.Since(behindSince) > opts.writeTimeout() {
			s.fail(StreamError{Code: "too_slow", Message: fmt.Sprintf("this subscriber is %d events behind; reconnect to resume", lag), ResumeID: pos.String()})
			return
		}
		evs, next, err := ps.next(ctx, pos, opts.Batch)
		if err != nil {
			if ctx.Err() == nil {
				s.fail(StreamError{Code: "unavailable", Message: "the stream's sources are unavailable; reconnect later", ResumeID: pos.String()})
			}
			return
		}
		for _, e := range evs {
			if !filter.Match(e.Park, e.Event) {
				continue
			}
			b, _ := json.Marshal(e.Event)
			if err := s.event(e.After.String(), "", b); err != nil {
				return
			}
		}
		moved := next != pos
		pos = next
		if moved {
			if err := s.flush(); err != nil {
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-opts.Draining:
			s.fail(StreamError{Code: "shutting_down", Message: "this gateway is shutting down; reconnect to resume", ResumeID: pos.String()})
			return
		case <-localSig:
		case <-inboxSig:
		case <-heartbeat.C:
			if err := s.comment("heartbeat"); err != nil {
				return
			}
		}
	}
}
