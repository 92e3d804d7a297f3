package relevance

import (
	"math"
	"testing"
)

// The metrics on a hand-checked set.
func TestRelevanceMetrics(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	tests := []struct {
		name     string
		got      []int // grades of the results, top first
		judged   []int // grades of every relevant listing
		p5, ndcg float64
	}{
		{"perfect", []int{2, 1}, []int{1, 2}, 1, 1},
		{"nothing found", nil, []int{2}, 0, 0},
		// Two relevant, one found third: P@5 = 1/min(5,2); DCG = 3/log2(4) = 1.5,
		// ideal = 3 + 1/log2(3).
		{"one of two, third", []int{0, 0, 2}, []int{2, 1}, 0.5, 1.5 / (3 + 1/math.Log2(3))},
		// Swapped: DCG = 1 + 3/log2(3); ideal = 3 + 1/log2(3).
		{"swapped", []int{1, 2}, []int{2, 1}, 1, (1 + 3/math.Log2(3)) / (3 + 1/math.Log2(3))},
		// Seven relevant, 3 in the first five: 3/5; the eleventh result is
		// beyond nDCG@10.
		{"seven relevant", []int{1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 2}, []int{2, 1, 1, 1, 1, 1, 1}, 0.6, -1},
	}
	for _, tt := range tests {
		if p := PrecisionAt5(tt.got, len(tt.judged)); !near(p, tt.p5) {
			t.Errorf("%s: P@5 = %v, want %v", tt.name, p, tt.p5)
		}
		if tt.ndcg >= 0 {
			if n := NDCGAt10(tt.got, tt.judged); !near(n, tt.ndcg) {
				t.Errorf("%s: nDCG@10 = %v, want %v", tt.name, n, tt.ndcg)
			}
		}
	}
	if n := NDCGAt10([]int{1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 2}, []int{2, 1, 1, 1, 1, 1, 1}); n >= NDCGAt10([]int{2, 1, 1, 0, 1}, []int{2, 1, 1, 1, 1, 1, 1}) {
		t.Errorf("a grade-2 result beyond the tenth counts: %v", n)
	}
}

// Floors of the judged set, set from the measured numbers
// (docs/benchmarks.md: local 0.92 / 0.94, club 0.92 / 0.94, none empty)
// with a margin for small ranking changes; the aims are P@5 ≥
// 0.75 and nDCG@10 ≥ 0.85.
const (
	floorP5   = 0.88
	floorNDCG = 0.90
)

// TestRelevanceFloor scores the judged set over the sample data, as
// `go run ./deploy/bench -mode relevance` does, and fails below the floors
// or when a query finds nothing although a listing is relevant.
func TestRelevanceFloor(t *testing.T) {
	scores, err := Run(t.Context(), t.TempDir(), "judgments.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(scores[0].Queries) < 40 {
		t.Errorf("%d judged queries, want at least 40", len(scores[0].Queries))
	}
	for _, s := range scores {
		t.Logf("%s: P@5 %.3f nDCG@10 %.3f", s.Scope, s.P5, s.NDCG)
		if s.P5 < floorP5 || s.NDCG < floorNDCG {
			t.Errorf("%s search: P@5 %.3f, nDCG@10 %.3f; floors %.2f and %.2f", s.Scope, s.P5, s.NDCG, floorP5, floorNDCG)
		}
		if len(s.Zero) > 0 {
			t.Errorf("%s search: no result for %q although a listing is relevant", s.Scope, s.Zero)
		}
	}
}
