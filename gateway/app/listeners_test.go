package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// call makes one request and returns its status.
func call(t *testing.T, method, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// The trust boundary is a port: the federation listener answers the
// federation API and the well-known documents only, the park listener the
// staff API, the portal, metrics and health only — each checked both ways.
func TestEachListenerAnswersItsSideOnly(t *testing.T) {
	p := startInproc(t, "xian-hitech", tracetest.NewInMemoryExporter())
	tok, _ := parktoken.Issue(p.keys, p.id, "test", parktoken.Admin, time.Hour, time.Now())
	park := []struct{ method, path string }{
		{"GET", "/api/v1/search?q=copper"}, {"GET", "/api/v1/projects"}, {"GET", "/api/v1/peers"},
		{"GET", "/api/v1/webhooks"}, {"GET", "/"}, {"GET", "/portal/portal.js"},
		{"GET", "/metrics"}, {"GET", "/healthz"}, {"GET", "/readyz"},
	}
	federation := []struct {
		method, path string
		status       int // without a federation token
	}{
		{"GET", "/.well-known/parkmesh.json", 200}, {"GET", "/.well-known/jwks.json", 200},
		{"POST", "/federation/v1/search", 401}, {"GET", "/federation/v1/changes", 401},
		{"GET", "/federation/v1/listings/projects/prj_01JABCDEFGHJKMNPQRSTVWXYZ0", 401},
		{"POST", "/federation/v1/peering/establish", 401},
	}
	for _, r := range park {
		if got := call(t, r.method, p.url+r.path, tok); got != 200 {
			t.Errorf("park port %s %s: %d, want 200", r.method, r.path, got)
		}
		if got := call(t, r.method, p.fedURL+r.path, tok); got != 404 {
			t.Errorf("federation port %s %s: %d, want 404", r.method, r.path, got)
		}
	}
	for _, r := range federation {
		if got := call(t, r.method, p.fedURL+r.path, ""); got != r.status {
			t.Errorf("federation port %s %s: %d, want %d", r.method, r.path, got, r.status)
		}
		if got := call(t, r.method, p.url+r.path, tok); got != 404 {
			t.Errorf("park port %s %s: %d, want 404", r.method, r.path, got)
		}
	}
}

// With -metrics-listen, metrics and health move to their own port and
// leave the park port.
func TestMetricsListenerApart(t *testing.T) {
	p := startInprocWith(t, "chengdu-hitech", tracetest.NewInMemoryExporter(), true)
	addr := strings.TrimPrefix(p.metricsURL, "http://")
	tok, _ := parktoken.Issue(p.keys, p.id, "test", parktoken.Viewer, time.Hour, time.Now())
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if got := call(t, "GET", "http://"+addr+path, ""); got != 200 {
			t.Errorf("metrics port %s: %d, want 200", path, got)
		}
		if got := call(t, "GET", p.url+path, tok); got != 404 {
			t.Errorf("park port %s: %d, want 404", path, got)
		}
		if got := call(t, "GET", p.fedURL+path, ""); got != 404 {
			t.Errorf("federation port %s: %d, want 404", path, got)
		}
	}
	if got := call(t, "GET", "http://"+addr+"/api/v1/search", tok); got != 404 {
		t.Errorf("metrics port /api/v1/search: %d, want 404", got)
	}
}
