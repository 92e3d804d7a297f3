package feed

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Filter selects the events a park-side subscriber (the stream or a
// webhook) wants. Empty fields select everything.
type Filter struct {
	Kinds   []listing.Kind `json:"kinds,omitempty"`
	Sectors []string       `json:"sectors,omitempty"`
	Seeking []string       `json:"seeking,omitempty"`
	Text    string         `json:"q,omitempty"`
	Parks   []string       `json:"parks,omitempty"`
}

// ParseFilter reads a filter from URL parameters.
func ParseFilter(v url.Values) (Filter, error) {
	var f Filter
	for name := range v {
		switch name {
		case "kinds", "sectors", "seeking", "q", "parks", "last_event_id":
		default:
			return f, apierror.InvalidField(httpjson.Clip(name), "is not a stream parameter")
		}
	}
	q, err := listing.ParseQuery(url.Values{"sectors": v["sectors"], "seeking": v["seeking"], "q": v["q"]}, "")
	if err != nil {
		return f, err
	}
	f.Sectors, f.Seeking, f.Text = q.Sectors, q.Seeking, strings.ToLower(q.Text)
	if s := v.Get("kinds"); s != "" {
		if f.Kinds, err = listing.ParseKinds(s, "kinds"); err != nil {
			return f, err
		}
	}
	if f.Parks, err = listing.ParseParks(v, "parks"); err != nil {
		return f, err
	}
	return f, nil
}

// Match reports whether ev, from park, passes the filter. A withdrawn
// event carries no content, so only its kind and park are checked.
func (f Filter) Match(park string, ev *Event) bool {
	if len(f.Parks) > 0 && !slices.Contains(f.Parks, park) {
		return false
	}
	if ev.Type() == TypeWithdrawn {
		var w Withdrawn
		json.Unmarshal(ev.Data(), &w)
		return len(f.Kinds) == 0 || slices.Contains(f.Kinds, w.Kind)
	}
	l, err := listingOf(ev)
	if err != nil {
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
