package sample_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/deploy/local/sample"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/services/directory"
	"github.com/parkmesh/parkmesh/services/listingservice"
	"github.com/parkmesh/parkmesh/services/project"
	"github.com/parkmesh/parkmesh/services/talent"
)

// searchable is the text a listing is found by, as the store indexes it.
func searchable(l *listing.Listing) (title, body string) {
	parts := []string{l.Summary, l.City, l.Attrs.Affiliation}
	parts = append(parts, l.Tags...)
	parts = append(parts, l.Attrs.Expertise...)
	return l.Title, strings.Join(parts, "\n")
}

// TestSampleSearch loads a park's sample into its three real services and
// checks, for Chinese and English queries, that each service returns every
// listing whose text holds the term, title matches ranked first. A service
// may return more (issue 14: synonyms and vocabulary codes, e.g. 新材料
// finds the listings of sector new-materials), ranked below the listings
// whose title holds the term.
func TestSampleSearch(t *testing.T) {
	f, err := sample.Load("xian-hitech")
	if err != nil {
		t.Fatal(err)
	}
	urls := map[listing.Kind]string{}
	dir := t.TempDir()
	for _, spec := range []listingservice.Spec{directory.Spec, project.Spec, talent.Spec} {
		m := listingservice.NewMain(spec, io.Discard)
		if err := m.ParseFlags([]string{"-listen", "127.0.0.1:0", "-data-dir", dir, "-park", "xian-hitech", "-consul", "off", "-log-level", "error"}, func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := m.Open(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		urls[spec.Kind] = "http://" + m.Addr() + "/v1/listings"
	}
	n, err := f.Post(t.Context(), http.DefaultClient, func(k listing.Kind) string { return urls[k] }, nil)
	if err != nil || n != len(f.Listings) {
		t.Fatalf("loaded %d of %d: %v", n, len(f.Listings), err)
	}
	queries := []struct {
		q    string
		fold bool // English: case-insensitive
	}{{"硅谷", false}, {"高新区", false}, {"新材料", false}, {"芯片", false}, {"医疗", false}, {"copper", true}, {"COPPER", true}, {"Silicon Valley", true}}
	hitsTotal := 0
	for _, qc := range queries {
		for _, k := range listing.Kinds {
			contains := func(s string) bool {
				if qc.fold {
					for _, w := range strings.Fields(strings.ToLower(qc.q)) {
						if !strings.Contains(strings.ToLower(s), w) {
							return false
						}
					}
					return true
				}
				return strings.Contains(s, qc.q)
			}
			want := map[string]bool{}
			anyTitle := false
			for i := range f.Listings {
				l := &f.Listings[i]
				title, body := searchable(l)
				if l.Kind == k && contains(title+"\n"+body) {
					want[l.Title] = true
					anyTitle = anyTitle || contains(title)
				}
			}
			res, err := http.Get(urls[k] + "?limit=100&q=" + url.QueryEscape(qc.q))
			if err != nil {
				t.Fatal(err)
			}
			var page listing.Page
			json.NewDecoder(res.Body).Decode(&page)
			res.Body.Close()
			got := map[string]bool{}
			lastTitleHit, firstExtra := -1, len(page.Results)
			for i, r := range page.Results {
				got[r.Title] = true
				title, _ := searchable(r)
				if contains(title) {
					lastTitleHit = i
				}
				if !want[r.Title] && i < firstExtra {
					firstExtra = i
				}
			}
			for title := range want {
				if !got[title] {
					t.Errorf("%s %q: missing %q (got %v)", k, qc.q, title, got)
				}
			}
			if firstExtra < lastTitleHit {
				t.Errorf("%s %q: %q, found by an expansion, ranks above a title match", k, qc.q, page.Results[firstExtra].Title)
			}
			hitsTotal += len(got)
			if anyTitle {
				if first, _ := searchable(page.Results[0]); !contains(first) {
					t.Errorf("%s %q: first result %q has no title match though one exists", k, qc.q, first)
				}
			}
		}
	}
	if hitsTotal < 10 {
		t.Errorf("only %d hits over all queries: sample too thin to show search", hitsTotal)
	}
}
