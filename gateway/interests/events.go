package interests

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/state"
)

// CloudEvents types of interests.
const (
	// TypeReceived: the owner park received an interest in one of its listings.
	TypeReceived = "org.parkmesh.interest.received"
	// TypeAnswered: the sender park learnt the owner's answer (accepted
	// or declined), or that the owner park refused the interest.
	TypeAnswered = "org.parkmesh.interest.answered"
	// TypeWithdrawn: the owner park learnt that the sender withdrew.
	TypeWithdrawn = "org.parkmesh.interest.withdrawn"
)

// EventData is what an interest event carries: which interest, its
// listing, the parks and the status. No message, no contact, no person.
type EventData struct {
	ID         string     `json:"id"`
	Box        string     `json:"box"`
	Status     Status     `json:"status"`
	Listing    ListingRef `json:"listing"`
	SenderPark string     `json:"sender_park"`
	OwnerPark  string     `json:"owner_park"`
}

// event builds the CloudEvent typ about in, as this park emits it.
func (s *Service) event(typ string, in *Interest) state.InterestEvent {
	ev := cloudevents.New()
	id := in.ID + "/" + typ[len("org.parkmesh.interest."):]
	ev.SetID(id)
	ev.SetSource(feed.SourceOf(s.Park))
	ev.SetType(typ)
	ev.SetSubject(in.ID)
	ev.SetTime(s.now())
	b, _ := json.Marshal(EventData{ID: in.ID, Box: in.Box, Status: in.Status, Listing: in.Listing, SenderPark: in.SenderPark, OwnerPark: in.OwnerPark})
	ev.SetData(cloudevents.ApplicationJSON, json.RawMessage(b))
	raw, _ := json.Marshal(ev)
	return state.InterestEvent{ID: id, Event: raw}
}

// Position is a place in the park's interest events (its SSE id).
type Position int64

// String implements feed.Pos.
func (p Position) String() string { return "i" + strconv.FormatInt(int64(p), 10) }

// Equal implements feed.Pos.
func (p Position) Equal(q Position) bool { return p == q }

// Behind implements feed.Pos.
func (p Position) Behind(head Position) int64 { return int64(head - p) }

// ParsePosition reads a Position from its String form ("" is the newest).
func ParsePosition(s string) (Position, bool) {
	if len(s) < 2 || s[0] != 'i' {
		return 0, false
	}
	n, err := strconv.ParseInt(s[1:], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return Position(n), true
}

// Head is the newest interest event's position.
func (s *Service) Head(ctx context.Context) (Position, error) {
	n, err := s.State.LastInterestEvent(ctx)
	return Position(n), err
}

// Stream is the park's interest events as a feed.Source, for the SSE loop
// every stream of the gateway is served by.
type Stream struct{ S *Service }

// Signals implements feed.Source: this gateway's own writes at once, the
// other replicas' within a second.
func (st Stream) Signals() []<-chan struct{} {
	tick := make(chan struct{})
	time.AfterFunc(time.Second, func() { close(tick) })
	return []<-chan struct{}{st.S.Signal(), tick}
}

// Head implements feed.Source.
func (st Stream) Head(ctx context.Context) Position {
	p, _ := st.S.Head(ctx)
	return p
}

// Next implements feed.Source.
func (st Stream) Next(ctx context.Context, pos Position, limit int) ([]feed.Item[Position], Position, error) {
	evs, err := st.S.State.InterestEventsAfter(ctx, int64(pos), limit)
	if err != nil {
		return nil, pos, err
	}
	out := make([]feed.Item[Position], 0, len(evs))
	for _, e := range evs {
		var ev feed.Event
		if err := json.Unmarshal(e.Event, &ev); err != nil {
			pos = Position(e.Seq)
			continue
		}
		out = append(out, feed.Item[Position]{Park: st.S.Park, Event: &ev, After: Position(e.Seq)})
		pos = Position(e.Seq)
	}
	return out, pos, nil
}
