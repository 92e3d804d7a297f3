// Package relevance scores the park-side search on a judged query set
// (deploy/bench/relevance/judgments.json) over the sample data of every
// park (deploy/local/sample): each query's answer is read as an officer
// reads it, top first, and graded against the judgments.
//
//   - local: every sample listing in its kind's own store (three real
//     SQLite files), searched as a park's gateway searches its services
//     (gateway/localsearch: three ranked sources merged into one page);
//   - club: every sample listing in one club index file, searched as a
//     club search in index mode does (one query, one ranking).
//
// Metrics, per query then averaged: P@5 is the share of the first five
// results graded relevant (1 or 2), out of min(5, relevant listings), so a
// query with two relevant listings that shows both first scores 1;
// nDCG@10 uses gains 2^grade − 1 and the ideal order of every judged
// listing.
//
// The bench's -mode relevance (go run ./deploy/bench -mode relevance) runs
// it and records the result.
package relevance

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	sampledata "github.com/parkmesh/parkmesh/deploy/local/sample"
	"github.com/parkmesh/parkmesh/gateway/localsearch"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// JudgmentsFile is where the judged set lives, from the repository root.
const JudgmentsFile = "deploy/bench/relevance/judgments.json"

// Judgments is the judged query set.
type Judgments struct {
	Queries []Judged `json:"queries"`
}

// Judged is one query and its grades.
type Judged struct {
	Q       string   `json:"q"`
	Class   string   `json:"class"`
	Sectors []string `json:"sectors,omitempty"`
	Kinds   []string `json:"kinds,omitempty"`
	// Grades maps a listing (a substring of exactly one sample listing's
	// title) to 2 (what the officer wants) or 1 (related); every other
	// listing is 0.
	Grades map[string]int `json:"grades"`
}

// QueryScore is how one query scored.
type QueryScore struct {
	Q     string
	Class string
	P5    float64
	NDCG  float64
	Hits  int
	Found int // relevant listings in the first ten
	Rel   int // relevant listings judged
}

// Scores is a run over the whole set.
type Scores struct {
	Scope   string
	Queries []QueryScore
	P5      float64
	NDCG    float64
	Zero    []string // queries that found nothing although a listing is relevant
}

// PrecisionAt5 is the share of relevant results among the first five, out
// of min(5, relevant).
func PrecisionAt5(grades []int, relevant int) float64 {
	if relevant == 0 {
		return 1
	}
	n := 0
	for i := 0; i < len(grades) && i < 5; i++ {
		if grades[i] > 0 {
			n++
		}
	}
	return float64(n) / float64(min(5, relevant))
}

// NDCGAt10 is the normalised discounted cumulative gain of the first ten
// grades against the ideal ordering of all judged grades.
func NDCGAt10(grades, judged []int) float64 {
	dcg := func(g []int) float64 {
		s := 0.0
		for i := 0; i < len(g) && i < 10; i++ {
			s += (math.Pow(2, float64(g[i])) - 1) / math.Log2(float64(i)+2)
		}
		return s
	}
	ideal := slices.Clone(judged)
	slices.SortFunc(ideal, func(a, b int) int { return b - a })
	idcg := dcg(ideal)
	if idcg == 0 {
		return 1
	}
	return dcg(grades) / idcg
}

// LoadJudgments reads and checks the judged set against the sample: every
// graded key must name exactly one listing, grades are 1 or 2.
func LoadJudgments(path string, all []*listing.Listing) (*Judgments, []map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var j Judgments
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	// grades per query (by index): listing id → grade
	var byID []map[string]int
	seen := map[string]bool{}
	for i, q := range j.Queries {
		if strings.TrimSpace(q.Q) == "" {
			return nil, nil, fmt.Errorf("%s: queries[%d]: q is empty", path, i)
		}
		key := q.Q + "\x00" + strings.Join(q.Sectors, ",") + "\x00" + strings.Join(q.Kinds, ",")
		if seen[key] {
			return nil, nil, fmt.Errorf("%s: queries[%d]: %q judged twice", path, i, q.Q)
		}
		seen[key] = true
		g := map[string]int{}
		for key, grade := range q.Grades {
			if grade != 1 && grade != 2 {
				return nil, nil, fmt.Errorf("%s: queries[%d] (%q): grade of %q must be 1 or 2", path, i, q.Q, key)
			}
			var ids []string
			for _, l := range all {
				if strings.Contains(l.Title, key) {
					ids = append(ids, l.ID)
				}
			}
			if len(ids) != 1 {
				return nil, nil, fmt.Errorf("%s: queries[%d] (%q): %q names %d sample listings, want exactly one", path, i, q.Q, key, len(ids))
			}
			g[ids[0]] = grade
		}
		byID = append(byID, g)
	}
	return &j, byID, nil
}

// SampleListings is every sample listing, fully formed (ids, park,
// version, times), in the order a demo loads them.
func SampleListings() ([]*listing.Listing, error) {
	parks, err := sampledata.Parks()
	if err != nil {
		return nil, err
	}
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var all []*listing.Listing
	for _, p := range parks {
		for i := range p.Listings {
			l := p.Listings[i]
			now = now.Add(time.Second)
			l.ID, l.Park, l.Version, l.CreatedAt, l.UpdatedAt = listing.NewID(l.Kind, now), p.Park.ID, 1, now, now
			if err := l.Validate(l.Kind); err != nil {
				return nil, fmt.Errorf("sample %s %q: %w", p.Park.ID, l.Title, err)
			}
			all = append(all, &l)
		}
	}
	return all, nil
}

// storeServices is localsearch.Services over one store per kind.
type storeServices map[listing.Kind]*sqlitestore.Store

func (s storeServices) Search(ctx context.Context, k listing.Kind, q listing.Query) (*listing.Page, error) {
	return s[k].Search(ctx, q)
}

// Run loads the sample into real stores under dir and scores the
// judged set in both scopes: local first, then club.
func Run(ctx context.Context, dir, judgments string) ([]Scores, error) {
	all, err := SampleListings()
	if err != nil {
		return nil, err
	}
	j, grades, err := LoadJudgments(judgments, all)
	if err != nil {
		return nil, err
	}
	club, err := sqlitestore.Open(ctx, filepath.Join(dir, "club.db"))
	if err != nil {
		return nil, err
	}
	defer club.Close()
	services := storeServices{}
	for _, k := range listing.Kinds {
		s, err := sqlitestore.Open(ctx, filepath.Join(dir, string(k)+".db"))
		if err != nil {
			return nil, err
		}
		defer s.Close()
		services[k] = s
	}
	err = club.Batch(ctx, func(b *sqlitestore.Batch) error {
		for i, l := range all {
			if _, err := b.Put(l, int64(i+1)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, l := range all {
		if err := services[l.Kind].Create(ctx, l); err != nil {
			return nil, err
		}
	}
	local := &localsearch.Searcher{Services: services, Cursors: search.NewSigner([]byte("relevance"))}
	run := func(scope string, find func(listing.Query, []listing.Kind) ([]*listing.Listing, error)) (Scores, error) {
		sc := Scores{Scope: scope}
		for qi, jq := range j.Queries {
			q := listing.Query{Text: jq.Q, Sectors: jq.Sectors, Limit: 10}
			kinds := listing.Kinds
			if len(jq.Kinds) > 0 {
				if kinds, err = listing.ParseKinds(strings.Join(jq.Kinds, ","), "kinds"); err != nil {
					return sc, fmt.Errorf("%q: %w", jq.Q, err)
				}
			}
			res, err := find(q, kinds)
			if err != nil {
				return sc, fmt.Errorf("%s search %q: %w", scope, jq.Q, err)
			}
			g := grades[qi]
			var got, judged []int
			for _, l := range res {
				got = append(got, g[l.ID])
			}
			rel := 0
			for _, v := range g {
				judged = append(judged, v)
				rel++
			}
			qs := QueryScore{Q: jq.Q, Class: jq.Class, P5: PrecisionAt5(got, rel), NDCG: NDCGAt10(got, judged), Hits: len(res), Rel: rel}
			for _, v := range got {
				if v > 0 {
					qs.Found++
				}
			}
			if len(res) == 0 && rel > 0 {
				sc.Zero = append(sc.Zero, jq.Q)
			}
			sc.P5 += qs.P5
			sc.NDCG += qs.NDCG
			sc.Queries = append(sc.Queries, qs)
		}
		if n := len(sc.Queries); n > 0 {
			sc.P5 /= float64(n)
			sc.NDCG /= float64(n)
		}
		return sc, nil
	}
	localScores, err := run("local", func(q listing.Query, kinds []listing.Kind) ([]*listing.Listing, error) {
		page, err := local.Search(ctx, q, kinds, "")
		if err != nil {
			return nil, err
		}
		if len(page.Failures) > 0 {
			return nil, fmt.Errorf("services failed: %v", page.Failures)
		}
		return page.Results, nil
	})
	if err != nil {
		return nil, err
	}
	clubScores, err := run("club", func(q listing.Query, kinds []listing.Kind) ([]*listing.Listing, error) {
		q.Kinds = kinds
		page, err := club.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		return page.Results, nil
	})
	if err != nil {
		return nil, err
	}
	return []Scores{localScores, clubScores}, nil
}
