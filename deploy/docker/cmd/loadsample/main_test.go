package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/local/sample"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// fakeGateway serves the few park-side endpoints loadsample uses and checks
// every token with the park's keys, as the real gateway does.
type fakeGateway struct {
	verifier *parktoken.Verifier
	mu       sync.Mutex
	readyAt  time.Time
	created  map[string]int
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.URL.Path == "/readyz" {
		n := 0
		if time.Now().After(g.readyAt) {
			n = 1
		}
		json.NewEncoder(w).Encode(map[string]any{"status": "ready", "instances": map[string]int{"organization": n, "project": n, "talent": n}})
		return
	}
	tok, _ := parktoken.FromRequest(r)
	claims, err := g.verifier.Verify(tok)
	if err != nil || parktoken.Require(claims, parktoken.Editor) != nil {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthorized","message":"no"}}`)
		return
	}
	coll := strings.TrimPrefix(r.URL.Path, "/api/v1/")
	switch r.Method {
	case http.MethodGet:
		results := []map[string]string{}
		if g.created[coll] > 0 {
			results = append(results, map[string]string{"id": "x"})
		}
		json.NewEncoder(w).Encode(map[string]any{"results": results})
	case http.MethodPost:
		g.created[coll]++
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{}`)
	}
}

func TestLoadOnceThenSkip(t *testing.T) {
	const park = "xian-hitech"
	dir := t.TempDir()
	ks, err := parkkey.Init(dir, park)
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{verifier: parktoken.NewVerifier(parktoken.StaticKeys(ks)),
		readyAt: time.Now().Add(700 * time.Millisecond), created: map[string]int{}}
	srv := httptest.NewServer(g)
	defer srv.Close()
	f, err := sample.Load(park)
	if err != nil {
		t.Fatal(err)
	}

	var stdout, stderr strings.Builder
	env := map[string]string{"PARKMESH_PARK": park, "PARKMESH_DATA_DIR": dir}
	args := []string{"-gateway", srv.URL, "-wait", "10s"}
	if code := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr); code != 0 {
		t.Fatalf("first run: exit %d, stderr: %s", code, stderr.String())
	}
	if got, want := strings.TrimSpace(stdout.String()), len(f.Listings); got != strconv.Itoa(want) {
		t.Errorf("first run printed %q, want %d", got, want)
	}
	total := 0
	for _, n := range g.created {
		total += n
	}
	if total != len(f.Listings) {
		t.Errorf("gateway got %d listings, want %d", total, len(f.Listings))
	}

	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr); code != 0 {
		t.Fatalf("second run: exit %d, stderr: %s", code, stderr.String())
	}
	if strings.TrimSpace(stdout.String()) != "0" || !strings.Contains(stderr.String(), "already holds") {
		t.Errorf("second run loaded again: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestFailures(t *testing.T) {
	dir := t.TempDir()
	if _, err := parkkey.Init(dir, "chengdu-hitech"); err != nil {
		t.Fatal(err)
	}
	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer never.Close()
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing park", []string{"-token", "t"}, 2, "required"},
		{"missing credential", []string{"-park", "xian-hitech"}, 2, "required"},
		{"unknown park", []string{"-park", "atlantis", "-token", "t", "-gateway", never.URL}, 1, "unknown park"},
		{"keys of another park", []string{"-park", "xian-hitech", "-data-dir", dir, "-gateway", never.URL}, 1, "belong to park"},
		{"gateway never ready", []string{"-park", "chengdu-hitech", "-data-dir", dir, "-gateway", never.URL, "-wait", "700ms"}, 1, "not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tt.args, func(string) string { return "" }, &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr.String(), tt.code, tt.msg)
			}
		})
	}
}
