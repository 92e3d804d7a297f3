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

// Search runs one page of q over the kinds' services. visibleTo, when set,
// keeps only what that peer may see. It returns the page, the next cursor
// and the services that failed (the page is then partial).
func (s *Searcher) Search(ctx context.Context, q listing.Query, kinds []listing.Kind, visibleTo string) ([]*listing.Listing, string, []string, error) {
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
			return nil, "", nil, err
		}
		state = c.Sources
	}
	pages := make([]search.SourcePage, len(kinds))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for i, k := range kinds {
		pages[i].Name = string(k)
		st := state[string(k)]
		if st.Done {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			page, err := s.Services.Search(ctx, k, forKind(q, k, st.Cursor, limit))
			if err != nil {
				pages[i].Failed = true
				mu.Lock()
				failures = append(failures, apierror.Public(err).Message)
				mu.Unlock()
				return
			}
			pages[i].Results, pages[i].Next = page.Results, page.NextCursor
		}()
	}
	wg.Wait()
	results, next := search.Merge(pages, state, limit)
	if results == nil {
		results = []*listing.Listing{}
	}
	cursor := ""
	if next != nil {
		cursor = s.Cursors.Encode(search.Cursor{Query: qh, Sources: next})
	}
	return results, cursor, failures, nil
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
