package parkapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/parkapi"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// recordingService stands in for one kind's service and records every
// id the gateway hands it.
type recordingService struct {
	listingservice.Service // nil: any other call panics
	mu                     sync.Mutex
	ids                    []string
}

func (s *recordingService) seen(id string) {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
}

func (s *recordingService) Get(_ context.Context, id string) (*listing.Listing, error) {
	s.seen(id)
	return nil, apierror.New(apierror.NotFound, "no such listing")
}

func (s *recordingService) Update(_ context.Context, id string, _ *listing.Listing, _ int64) (*listing.Listing, error) {
	s.seen(id)
	return nil, apierror.New(apierror.NotFound, "no such listing")
}

func (s *recordingService) Delete(_ context.Context, id string, _ int64) error {
	s.seen(id)
	return apierror.New(apierror.NotFound, "no such listing")
}

type services map[listing.Kind]*recordingService

func (s services) For(k listing.Kind) listingservice.Service { return s[k] }

// TestListingIDIsCheckedBeforeForwarding: an {id} that is not an id of the
// route's kind is refused with 400 naming the field id, and never reaches
// the service, whose path it would otherwise become part of.
func TestListingIDIsCheckedBeforeForwarding(t *testing.T) {
	ks, err := parkkey.FromKeys("xian-hitech", ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	svcs := services{}
	for _, k := range listing.Kinds {
		svcs[k] = &recordingService{}
	}
	api := &parkapi.API{Park: "xian-hitech", Services: svcs, Auth: parktoken.NewVerifier(parktoken.StaticKeys(ks)),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	mux := http.NewServeMux()
	api.Routes(mux, func(_ string, h http.Handler) http.Handler { return h })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tok, err := parktoken.Issue(ks, "xian-hitech", "li.wei", parktoken.Editor, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	valid := listing.NewID(listing.KindProject, time.Now())

	tests := []struct {
		method, path string
	}{
		{"GET", "/api/v1/projects/..%2Fchanges"},
		{"GET", "/api/v1/projects/..%2F..%2Fv1%2Fchanges%3Fafter%3D0"},
		{"GET", "/api/v1/projects/%2E%2E%2Fchanges"},
		{"GET", "/api/v1/projects/prj_01J%2F..%2F..%2Fchanges"},
		{"PUT", "/api/v1/projects/..%2Fchanges"},
		{"DELETE", "/api/v1/talent/..%2F..%2Fhealthz"},
		{"GET", "/api/v1/organizations/" + valid},                    // a project id under organizations
		{"GET", "/api/v1/projects/" + strings.ToLower(valid)},        // not the grammar's case
		{"GET", "/api/v1/projects/" + valid + "0"},                   // too long
		{"GET", "/api/v1/projects/prj_8ZZZZZZZZZZZZZZZZZZZZZZZZZ"},   // beyond 128 bits
		{"DELETE", "/api/v1/projects/" + valid[:len(valid)-1] + "U"}, // U is not Crockford base32
		{"GET", "/api/v1/projects/" + valid[:len(valid)-1] + "%00"},  // NUL
		{"GET", "/api/v1/projects/" + valid[:len(valid)-1] + "%0A"},  // newline
		{"GET", "/api/v1/projects/%20" + valid[1:]},                  // space
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("If-Match", "1")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct{ Error apierror.Error }
			json.NewDecoder(res.Body).Decode(&body)
			if res.StatusCode != 400 || body.Error.Code != apierror.Invalid || body.Error.Field != "id" {
				t.Errorf("%d %+v, want 400 naming the field id", res.StatusCode, body.Error)
			}
		})
	}
	for k, s := range svcs {
		if len(s.ids) != 0 {
			t.Errorf("%s service was handed %q", k, s.ids)
		}
	}
	// A well-formed id goes through (and the service answers).
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/projects/"+valid, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 || len(svcs[listing.KindProject].ids) != 1 || svcs[listing.KindProject].ids[0] != valid {
		t.Errorf("valid id: %d, service saw %q", res.StatusCode, svcs[listing.KindProject].ids)
	}
}
