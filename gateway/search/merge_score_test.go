package search

import (
	"slices"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// scored returns listings id with the given scores, in that order.
func scored(prefix string, scores ...float64) []*listing.Listing {
	out := make([]*listing.Listing, len(scores))
	for i, s := range scores {
		out[i] = &listing.Listing{ID: prefix + string(rune('0'+i)), Match: &listing.Match{Score: s}}
	}
	return out
}

func TestMergeByScore(t *testing.T) {
	tests := []struct {
		name  string
		pages []SourcePage
		limit int
		want  []string
	}{
		{
			// The example: an organization matching in its body
			// only no longer outranks title matches of other kinds.
			name: "by score across sources, not by rank",
			pages: []SourcePage{
				{Name: "organization", Results: scored("org", 0.45)},
				{Name: "project", Results: scored("prj", 1.25, 1.25, 0.9)},
				{Name: "talent", Results: scored("tal", 1.25, 0.3)},
			},
			limit: 10,
			want:  []string{"prj0", "tal0", "prj1", "prj2", "org0", "tal1"},
		},
		{
			// Club search in mode=live: this park is the first source, yet
			// a peer's better match comes first.
			name: "a peer's better match above this park's weak one",
			pages: []SourcePage{
				{Name: "this-park", Results: scored("own", 0.3, 0.2)},
				{Name: "peer", Results: scored("peer", 1.1)},
			},
			limit: 10,
			want:  []string{"peer0", "own0", "own1"},
		},
		{
			name: "a source without scores (an older peer) makes the merge interleave by rank",
			pages: []SourcePage{
				{Name: "a", Results: scored("a", 0.1, 0.1)},
				{Name: "b", Results: items("b", 2)},
			},
			limit: 10,
			want:  []string{"a0", "b0", "a1", "b1"},
		},
	}
	for _, tt := range tests {
		got, _ := Merge(tt.pages, map[string]SourceState{}, tt.limit)
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, ids(got), tt.want)
		}
	}
}

// A source whose page ran out while it has more stops the merged page
// while its next results could score higher than the best at hand; the
// next call, with its next page, goes on in score order.
func TestMergeByScoreWaitsForASourceToFetch(t *testing.T) {
	pages := []SourcePage{
		{Name: "a", Results: scored("a", 0.9), Next: "a-next"},
		{Name: "b", Results: scored("b", 0.8, 0.2)},
	}
	got, state := Merge(pages, map[string]SourceState{}, 10)
	if !slices.Equal(ids(got), []string{"a0"}) {
		t.Fatalf("first call: %v, want [a0]", ids(got))
	}
	if st := state["a"]; st.Cursor != "a-next" || st.Last == nil || *st.Last != 0.9 {
		t.Fatalf("state of a: %+v", st)
	}
	pages = []SourcePage{
		{Name: "a", Results: []*listing.Listing{{ID: "a1", Match: &listing.Match{Score: 0.5}}}},
		{Name: "b", Results: scored("b", 0.8, 0.2)},
	}
	got, state = Merge(pages, state, 10)
	if !slices.Equal(ids(got), []string{"b0", "a1", "b1"}) || state != nil {
		t.Fatalf("second call: %v (state %v), want [b0 a1 b1], done", ids(got), state)
	}
}
