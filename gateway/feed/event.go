// Package feed is the park's changes feed: the CloudEvents it carries
// (built and parsed with the CloudEvents Go SDK), positions in the park's
// change logs, the tail of the local services' logs, the park-side stream
// that adds peers' applied events, filters, and the one loop that serves
// any of these as Server-Sent Events.
package feed

import (
	"encoding/json"
	"errors"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// CloudEvents types of listing changes.
const (
	TypeCreated   = "org.parkmesh.listing.created"
	TypeUpdated   = "org.parkmesh.listing.updated"
	TypeWithdrawn = "org.parkmesh.listing.withdrawn"
)

// Event is a CloudEvents 1.0 event, the data of every feed event.
type Event = cloudevents.Event

// Withdrawn is all a withdrawn event says about the listing.
type Withdrawn struct {
	ID      string       `json:"id"`
	Park    string       `json:"park"`
	Kind    listing.Kind `json:"kind"`
	Version int64        `json:"version"`
}

// SourceOf is the CloudEvents source of a park's events.
func SourceOf(park string) string { return "/parks/" + park }

// For turns a change of a changes read of current state (the listing's
// latest change after the reader's position) into the event viewer may
// receive: viewer "" is the park's own staff (sees everything); a peer id
// sees the listing as it may see it now, consent-redacted. A listing no
// longer visible is a withdrawn event carrying only its identity, and only
// for a viewer that could see some version of it (its audience): a park
// that never could see a listing learns nothing about it, not even its id.
// after is the reader's position in that log before this change: a listing
// created after it is news (created), else an update. nil means the viewer
// gets nothing.
func For(park string, k listing.Kind, c listing.Change, viewer string, after int64) *Event {
	ev := cloudevents.New()
	ev.SetID(fmt.Sprintf("%s/%s/%d", park, k, c.Seq))
	ev.SetSource(SourceOf(park))
	ev.SetSubject(c.ListingID)
	ev.SetTime(c.At)
	l := c.Listing
	if c.Op != listing.OpDeleted && l != nil && (viewer == "" || l.VisibleTo(viewer)) {
		ev.SetType(TypeUpdated)
		if c.FirstSeq > after {
			ev.SetType(TypeCreated)
		}
		if viewer != "" {
			l = l.ForPeers()
		}
		setJSON(&ev, l)
		return &ev
	}
	if viewer != "" && !c.Audience.Includes(viewer) {
		return nil
	}
	ev.SetType(TypeWithdrawn)
	setJSON(&ev, Withdrawn{ID: c.ListingID, Park: park, Kind: k, Version: c.Version})
	return &ev
}

// setJSON sets v as the event's JSON data. (SetData with a []byte would
// base64 it; a json.RawMessage goes in as JSON.)
func setJSON(ev *Event, v any) {
	b, _ := json.Marshal(v)
	ev.SetData(cloudevents.ApplicationJSON, json.RawMessage(b))
}

// Marshal renders ev as CloudEvents JSON (structured mode).
func Marshal(ev *Event) []byte {
	b, _ := json.Marshal(ev)
	return b
}

// Parse reads one event of peer's feed: CloudEvents 1.0 JSON with every
// required attribute, from that peer, of a known type, carrying a
// well-formed listing of that peer (or, for withdrawn, its identity).
// Extension attributes a newer park adds are tolerated. It returns the
// event, the listing id and the version the event carries.
func Parse(peer string, data []byte) (*Event, string, int64, error) {
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, "", 0, fmt.Errorf("not a CloudEvent: %w", err)
	}
	if err := ev.Validate(); err != nil {
		return nil, "", 0, fmt.Errorf("not a valid CloudEvent: %w", err)
	}
	if ev.SpecVersion() != cloudevents.CloudEventsVersionV1 || ev.Source() != SourceOf(peer) || ev.Subject() == "" || ev.Time().IsZero() {
		return nil, "", 0, errors.New("specversion, source, subject or time wrong")
	}
	// No datacontenttype means JSON in the JSON event format.
	if mt := ev.DataMediaType(); mt != "" && mt != cloudevents.ApplicationJSON {
		return nil, "", 0, fmt.Errorf("data content type %q is not JSON", mt)
	}
	switch ev.Type() {
	case TypeCreated, TypeUpdated:
		l, err := listingOf(&ev)
		if err != nil {
			return nil, "", 0, errors.New("data is not a listing")
		}
		if l.Park != peer || l.ID != ev.Subject() || !listing.ValidID(l.Kind, l.ID) || l.Version < 1 || l.Validate(l.Kind) != nil {
			return nil, "", 0, errors.New("data is not a valid listing of the peer")
		}
		return &ev, l.ID, l.Version, nil
	case TypeWithdrawn:
		var w Withdrawn
		if err := json.Unmarshal(ev.Data(), &w); err != nil || w.Park != peer || w.ID != ev.Subject() || !listing.ValidID(w.Kind, w.ID) || w.Version < 1 {
			return nil, "", 0, errors.New("withdrawn data malformed")
		}
		return &ev, w.ID, w.Version, nil
	}
	return nil, "", 0, fmt.Errorf("unknown type %q", ev.Type())
}

// ListingOf is the listing a created or updated event carries (after
// Parse accepted it).
func ListingOf(ev *Event) (*listing.Listing, error) { return listingOf(ev) }

// WithdrawnOf is the identity a withdrawn event carries (after Parse
// accepted it).
func WithdrawnOf(ev *Event) (Withdrawn, error) {
	var w Withdrawn
	err := json.Unmarshal(ev.Data(), &w)
	return w, err
}

// listingOf decodes the listing an event carries.
func listingOf(ev *Event) (*listing.Listing, error) {
	var l listing.Listing
	if err := json.Unmarshal(ev.Data(), &l); err != nil {
		return nil, err
	}
	return &l, nil
}
