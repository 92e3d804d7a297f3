package sample

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Post creates every listing of f through HTTP: urlFor returns the URL that
// accepts a POST of a listing of the given kind (a service's /v1/listings or
// a gateway's /api/v1/{kind}); header is added to each request (e.g. an
// Authorization bearer token). It stops at the first failure and returns
// how many listings were created.
func (f *File) Post(ctx context.Context, client *http.Client, urlFor func(listing.Kind) string, header http.Header) (int, error) {
	for i := range f.Listings {
		l := f.Listings[i]
		body, err := json.Marshal(&l)
		if err != nil {
			return i, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, urlFor(l.Kind), bytes.NewReader(body))
		if err != nil {
			return i, err
		}
		req.Header.Set("Content-Type", "application/json")
		for k, vs := range header {
			req.Header[k] = vs
		}
		res, err := client.Do(req)
		if err != nil {
			return i, fmt.Errorf("sample %s[%d]: %w", f.Park.ID, i, err)
		}
		if res.StatusCode != http.StatusCreated {
			e := apierror.Read(res.StatusCode, res.Body)
			res.Body.Close()
			return i, fmt.Errorf("sample %s[%d] %q: %w", f.Park.ID, i, l.Title, e)
		}
		res.Body.Close()
	}
	return len(f.Listings), nil
}
