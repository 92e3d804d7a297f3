// Package localsearch searches the park's own services: each kind's
// service is a source, their pages merged into one (gateway/search) and
// paged with a signed cursor. The park-side search, the federation search
// a peer asks and the club search's own part all go through it.
package localsearch

import (
	"context"
	"sync"

	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Services runs a query on one kind's service.
type Services interface {
	// Search returns one page of q from kind k's service; Invalid for a bad
	// query or cursor, Unavailable when no instance answers.
	Search(ctx context.Context, k listing.Kind, q listing.Query) (*listing.Page, error)
}

// Searcher searches the park's services.
type Searcher struct {
	Services Services
	Cursors  search.Signer
}

// Page is one page of a local search.
type Page struct {
	Results []*listing.Listing
	// Next is the cursor of the next page ("" on the last).
	Next string
	// Failures are the services that failed (the page is then partial).
	Failures []string
	// Facets, when the query named some, are the services' counts summed:
	// every match of the query in the park, whatever the page.
	Facets listing.FacetCounts
	// FacetsCapped is true when a service counted only its newest matches;
	// FacetsPartial when a service that failed counted nothing.
	FacetsCapped, FacetsPartial bool
}

// Search runs one page of q over the kinds' services. visibleTo, when set,
// keeps only what that peer may see. A service that failed is named in the
// page's Failures; the error is for a bad query or cursor.
//
// Facet counts (q.Facets) are asked of every service on any page; one
// whose results ran out on an earlier page is asked for one result from
// the start, for its counts only.
func (s *Searcher) Search(ctx context.Context, q listing.Query, kinds []listing.Kind, visibleTo string) (*Page, error) {
	limit := q.Limit
	if limit == 0 {
		limit = listing.DefaultLimit
	}
	q.VisibleTo = visibleTo
	qh := search.QueryHash(q, search.ScopeLocal, search.KindsKey(kinds))
	state := map[string]search.SourceState{}
	if q.Cursor != "" {
		c, err := s.Cursors.Decode(q.Cursor, qh)
		if err != nil {
			return nil, err
		}
		state = c.Sources
	}
	pages := make([]search.SourcePage, len(kinds))
	var wg sync.WaitGroup
	var mu sync.Mutex
	out := &Page{}
	if len(q.Facets) > 0 {
		out.Facets = listing.FacetCounts{}
		for _, f := range q.Facets {
			out.Facets[f] = map[string]int{}
		}
	}
	for i, k := range kinds {
		pages[i].Name = string(k)
		st := state[string(k)]
		kq := forKind(q, k, st.Cursor, limit)
		if st.Done {
			if len(q.Facets) == 0 {
				continue
			}
			// Its results are all returned; its counts are still wanted.
			kq.Cursor, kq.Limit = "", 1
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			page, err := s.Services.Search(ctx, k, kq)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				pages[i].Failed = true
				out.Failures = append(out.Failures, apierror.Public(err).Message)
				out.FacetsPartial = out.FacetsPartial || len(q.Facets) > 0
				return
			}
			if len(q.Facets) > 0 {
				if err := listing.ValidateFacets(page.Facets, "facets"); err != nil {
					out.FacetsPartial = true
				} else {
					out.Facets.Add(page.Facets)
					out.FacetsCapped = out.FacetsCapped || page.FacetsCapped
				}
			}
			if !st.Done {
				pages[i].Results, pages[i].Next = page.Results, page.NextCursor
			}
		}()
	}
	wg.Wait()
	results, next := search.Merge(pages, state, limit)
	if results == nil {
		results = []*listing.Listing{}
	}
	out.Results = results
	if next != nil {
		out.Next = s.Cursors.Encode(search.Cursor{Query: qh, Sources: next})
	}
	return out, nil
}

// forKind is q as kind k's service takes it: its own page cursor, and
// only the filters that belong to k.
func forKind(q listing.Query, k listing.Kind, cursor string, limit int) listing.Query {
	q.Cursor, q.Limit = cursor, limit
	if k != listing.KindProject {
		q.Stage = ""
	}
	if k != listing.KindTalent {
		q.Availability = ""
	}
	if k != listing.KindOrganization {
		q.OrgType = ""
	}
	return q
}
