package feed

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

func TestPositionRoundTrip(t *testing.T) {
	tests := []struct {
		pos  Position
		want string
	}{
		{Position{}, "v1.0.0.0"},
		{Position{1, 2, 3}, "v1.1.2.3"},
		{Position{math.MaxInt64, 0, 42}, "v1.9223372036854775807.0.42"},
	}
	for _, tt := range tests {
		if got := tt.pos.String(); got != tt.want {
			t.Errorf("%v.String() = %q, want %q", [3]int64(tt.pos), got, tt.want)
		}
		got, err := ParsePosition(tt.want)
		if err != nil || got != tt.pos {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v", tt.want, got, err, tt.pos)
		}
	}
}

func TestClubPositionRoundTrip(t *testing.T) {
	tests := []struct {
		pos  ClubPosition
		want string
	}{
		{ClubPosition{}, "c1"},
		{NewClubPosition(map[string]Position{"xian-hitech": {1, 2, 3}}), "c1~xian-hitech.1.2.3"},
		// Parks sorted, whatever order they were added in.
		{NewClubPosition(map[string]Position{"tlv-park": {0, 0, 9}, "haifa-park": {math.MaxInt64, 0, 1}}),
			"c1~haifa-park.9223372036854775807.0.1~tlv-park.0.0.9"},
	}
	for _, tt := range tests {
		if got := tt.pos.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		got, err := ParseClubPosition(tt.want)
		if err != nil || !got.Equal(tt.pos) {
			t.Errorf("ParseClubPosition(%q) = %v, %v; want %v", tt.want, got, err, tt.pos)
		}
	}
	// With copies: the original is untouched.
	p := NewClubPosition(map[string]Position{"haifa-park": {1, 1, 1}})
	q := p.With("haifa-park", Position{2, 2, 2}).With("tlv-park", Position{3, 0, 0})
	if p.Of("haifa-park") != (Position{1, 1, 1}) || len(p.Parks()) != 1 {
		t.Errorf("With changed its receiver: %v", p)
	}
	if q.Of("haifa-park") != (Position{2, 2, 2}) || q.Of("tlv-park") != (Position{3, 0, 0}) || q.Of("ulm-park") != (Position{}) {
		t.Errorf("With: %v", q)
	}
}

func TestPositionRefusals(t *testing.T) {
	for _, s := range []string{
		"", "v1", "v1.", "v1.1.2", "v1.1.2.3.4", "v2.1.2.3", "V1.1.2.3", "x.1.2.3",
		"v1.a.2.3", "v1.-1.2.3", "v1.1..3", "v1.1.2.3.", "v1. 1.2.3", "v1.1.2.0x3",
		"v1.9223372036854775808.0.0", // overflows int64
		"s1.1.2.3.4",                 // a park-side stream id is not a feed id
	} {
		_, err := ParsePosition(s)
		if !namesLastEventID(err) {
			t.Errorf("ParsePosition(%q) = %v, want Invalid naming Last-Event-ID", s, err)
		}
	}
	for _, s := range []string{
		"", "c2", "c1~", "c1~haifa-park", "c1~haifa-park.1.2", "c1~haifa-park.1.2.3.4", "c1~haifa-park.1.2.x",
		"c1~haifa-park.1.2.-3", "c1~Haifa.1.2.3", "c1~haifa-park.1.2.3~haifa-park.1.2.3", // twice
		"c1~haifa-park.1.2.99999999999999999999", "c1.haifa-park.1.2.3",
		"s1.1.2.3.4", // the stream id of the older inbox stream
		"v1.1.2.3",   // a feed id is not a park-side stream id
	} {
		_, err := ParseClubPosition(s)
		if !namesLastEventID(err) {
			t.Errorf("ParseClubPosition(%q) = %v, want Invalid naming Last-Event-ID", s, err)
		}
	}
}

func namesLastEventID(err error) bool {
	var e *apierror.Error
	return errors.As(err, &e) && e.Code == apierror.Invalid && e.Field == "Last-Event-ID"
}

func TestPositionBehindAfter(t *testing.T) {
	head := Position{10, 20, 30}
	tests := []struct {
		pos        Position
		wantBehind int64
		wantAfter  bool
	}{
		{head, 0, false},
		{Position{}, 60, false},
		{Position{10, 19, 30}, 1, false},
		{Position{9, 18, 27}, 6, false},
		{Position{11, 20, 30}, -1, true},
		{Position{0, 0, 31}, 29, true}, // past head in one log, behind in others
	}
	for _, tt := range tests {
		if got := tt.pos.Behind(head); got != tt.wantBehind {
			t.Errorf("%v.Behind(%v) = %d, want %d", tt.pos, head, got, tt.wantBehind)
		}
		if got := tt.pos.After(head); got != tt.wantAfter {
			t.Errorf("%v.After(%v) = %v, want %v", tt.pos, head, got, tt.wantAfter)
		}
	}
}

func TestClubPositionBehindAhead(t *testing.T) {
	head := NewClubPosition(map[string]Position{"xian-hitech": {10, 20, 30}, "haifa-park": {5, 0, 0}})
	tests := []struct {
		name       string
		pos        ClubPosition
		wantBehind int64
		wantAhead  []string
	}{
		{"at head", head, 0, nil},
		{"nothing read", ClubPosition{}, 65, nil},
		{"one park behind", head.With("haifa-park", Position{4, 0, 0}), 1, nil},
		{"a park head does not hold counts for nothing", head.With("tlv-park", Position{9, 9, 9}), 0, nil},
		{"ahead in one log of one park", head.With("xian-hitech", Position{10, 21, 30}), 0, []string{"xian-hitech"}},
		{"ahead in one park, behind in another", head.With("haifa-park", Position{6, 0, 0}).With("xian-hitech", Position{0, 20, 30}), 10, []string{"haifa-park"}},
	}
	for _, tt := range tests {
		if got := tt.pos.Behind(head); got != tt.wantBehind {
			t.Errorf("%s: Behind = %d, want %d", tt.name, got, tt.wantBehind)
		}
		if got := tt.pos.AheadOf(head); !slices.Equal(got, tt.wantAhead) {
			t.Errorf("%s: AheadOf = %v, want %v", tt.name, got, tt.wantAhead)
		}
	}
}

func TestMergeLogs(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ch := func(seq int64, minute int) listing.Change {
		return listing.Change{Seq: seq, At: t0.Add(time.Duration(minute) * time.Minute)}
	}
	queues := [3][]listing.Change{
		{ch(5, 1), ch(6, 4)},           // organization
		{ch(11, 2), ch(12, 2)},         // project
		{ch(3, 1), ch(4, 0), ch(7, 9)}, // talent: its own order is kept, even out of time
	}
	type step struct {
		kind listing.Kind
		seq  int64
		pos  Position
	}
	org, prj, tal := listing.KindOrganization, listing.KindProject, listing.KindTalent
	start := Position{4, 10, 2}
	all := []step{
		{org, 5, Position{5, 10, 2}}, // minute 1; ties go to the earlier log
		{tal, 3, Position{5, 10, 3}}, // minute 1
		{tal, 4, Position{5, 10, 4}}, // minute 0, but after seq 3 in its log
		{prj, 11, Position{5, 11, 4}},
		{prj, 12, Position{5, 12, 4}},
		{org, 6, Position{6, 12, 4}},
		{tal, 7, Position{6, 12, 7}},
	}
	for _, limit := range []int{100, 7, 3, 1, 0} {
		got := mergeLogs(queues, start, limit)
		var gotSteps []step
		for _, pc := range got {
			gotSteps = append(gotSteps, step{pc.Kind, pc.Change.Seq, pc.After})
		}
		want := all[:min(limit, len(all))]
		if !slices.Equal(gotSteps, want) {
			t.Errorf("limit %d: got %v\nwant %v", limit, gotSteps, want)
		}
	}
	if got := mergeLogs([3][]listing.Change{}, start, 10); len(got) != 0 {
		t.Errorf("empty logs gave %v", got)
	}
}
