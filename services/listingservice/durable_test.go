package listingservice_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/logbuf"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile/sqlitefiletest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// openService runs Main.Open as Run does, with args after the usual ones.
func openService(t *testing.T, spec listingservice.Spec, dir string, logs *logbuf.Buffer, env map[string]string, args ...string) (*listingservice.Main, error) {
	t.Helper()
	m := listingservice.NewMain(spec, logs)
	m.StoreOptions = []sqlitestore.Option{sqlitestore.WithRecheckEvery(50 * time.Millisecond)}
	base := []string{"-listen", "127.0.0.1:0", "-data-dir", dir, "-park", "xian-hitech", "-consul", "off"}
	if err := m.ParseFlags(append(base, args...), func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	err := m.Open(t.Context())
	if err == nil {
		t.Cleanup(func() { m.Close() })
	}
	return m, err
}

// parkDir is a park's data directory as the demo and a host have it: the
// park's keys and the three services' stores, with listings in talent's.
func parkDir(t *testing.T) (dir string, talent []byte) {
	t.Helper()
	dir = t.TempDir()
	if _, err := parkkey.Init(dir, "xian-hitech"); err != nil {
		t.Fatal(err)
	}
	for _, spec := range specs { // a first start on a park with keys creates every store
		m, err := openService(t, spec, dir, &logbuf.Buffer{}, nil)
		if err != nil {
			t.Fatalf("first start of %s beside the park's keys: %v", spec.Name, err)
		}
		if spec == specs[2] {
			base := serve(t, m)
			for i := range 200 {
				b := validBody(spec.Kind)
				b["title"] = fmt.Sprintf("人才 %d", i)
				if r := do(t, "POST", base+"/v1/listings", b); r.status != 201 {
					t.Fatalf("create: %d %s", r.status, r.body)
				}
			}
		}
		m.Close()
	}
	talent, err := os.ReadFile(filepath.Join(dir, "xian-hitech-talent.db"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, talent
}

// Each damage case: the service refuses to start, naming the file and
// what to do; with -allow-empty-store (or its variable) a missing or
// empty store begins empty, a damaged one is still refused.
func TestServiceRefusesToStartOnADamagedStore(t *testing.T) {
	src, good := parkDir(t)
	page := 4096
	cases := []struct {
		name    string
		damage  func(path string)
		problem string
		empty   bool
	}{
		{"zero-length", func(p string) { os.WriteFile(p, nil, 0o600) }, "is empty (zero bytes)", true},
		{"truncated", func(p string) { os.WriteFile(p, good[:len(good)/page/2*page], 0o600) }, "is damaged", false},
		{"garbage in the header", func(p string) { os.WriteFile(p, sqlitefiletest.Garble(good, 0, 100), 0o600) }, "does not start with the SQLite header", false},
		{"garbage in the middle", func(p string) { os.WriteFile(p, sqlitefiletest.Garble(good, len(good)/2/page*page, 64<<10), 0o600) }, "is damaged: quick_check", false},
		{"missing beside the others", func(p string) { os.Remove(p) }, "is missing", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "xian-hitech-talent.db")
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			c.damage(path)
			_, err := openService(t, specs[2], dir, &logbuf.Buffer{}, nil)
			if err == nil {
				t.Fatal("the service started on it")
			}
			for _, want := range []string{path, c.problem, "parkmesh restore", "-allow-empty-store"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			// The sibling stores are untouched and start as before.
			if _, err := openService(t, specs[0], dir, &logbuf.Buffer{}, nil); err != nil {
				t.Errorf("a healthy sibling: %v", err)
			}
			m, err := openService(t, specs[2], dir, &logbuf.Buffer{}, map[string]string{"PARKMESH_ALLOW_EMPTY_STORE": "true"})
			if !c.empty {
				if err == nil {
					t.Fatal("PARKMESH_ALLOW_EMPTY_STORE opened a damaged store")
				}
				return
			}
			if err != nil {
				t.Fatalf("with PARKMESH_ALLOW_EMPTY_STORE: %v", err)
			}
			base := serve(t, m)
			if n := lastSeq(t, base); n != 0 {
				t.Errorf("begun empty, last seq = %d", n)
			}
		})
	}
}

// A full disk: 507 insufficient_storage over HTTP, nothing of the write
// kept (no listing, no change), reads go on, /readyz stays ready, the
// metric and one log line name the store, and writes succeed again by
// themselves once there is room. The disk is the file's page cap
// (SetMaxPages), which makes SQLite fail with its real SQLITE_FULL.
func TestFullDiskAnswers507AndRecovers(t *testing.T) {
	logs := &logbuf.Buffer{}
	m, err := openService(t, specs[1], t.TempDir(), logs, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, m)
	var ids []string
	for i := range 20 {
		b := validBody(specs[1].Kind)
		b["title"] = fmt.Sprintf("项目 %d", i)
		var l listing.Listing
		r := do(t, "POST", base+"/v1/listings", b)
		r.decode(t, &l)
		ids = append(ids, l.ID)
	}
	seq := lastSeq(t, base)
	pages, err := m.Store().SetMaxPages(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var r resp
	for i := 0; i < 200; i++ {
		b := validBody(specs[1].Kind)
		b["summary"] = strings.Repeat("填满 fill the disk ", 100)
		if r = do(t, "POST", base+"/v1/listings", b); r.status != 201 {
			break
		}
		seq = lastSeq(t, base)
	}
	if r.status != 507 || !bytes.Contains(r.body, []byte(`"code":"insufficient_storage"`)) {
		t.Fatalf("create on a full disk: %d %s, want 507 insufficient_storage", r.status, r.body)
	}
	if got := lastSeq(t, base); got != seq {
		t.Errorf("the refused create left a change: last seq %d, want %d", got, seq)
	}
	// The gateway serves the same routes over the service's client: it
	// passes the 507 on as is.
	client, err := listingservice.NewHTTPClient(strings.TrimPrefix(base, "http://"), &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	listingservice.ListingRoutes(mux, specs[1].Kind, client, "/api/v1/projects", slog.New(slog.DiscardHandler),
		func(_ string, h http.Handler) http.Handler { return h })
	proxy := httptest.NewServer(mux)
	defer proxy.Close()
	b := validBody(specs[1].Kind)
	b["summary"] = strings.Repeat("填满 fill the disk ", 100)
	if r := do(t, "POST", proxy.URL+"/api/v1/projects", b); r.status != 507 || !bytes.Contains(r.body, []byte(`"code":"insufficient_storage"`)) {
		t.Errorf("create through the gateway's proxy on a full disk: %d %s", r.status, r.body)
	}
	big := validBody(specs[1].Kind)
	big["summary"] = strings.Repeat("更新 a longer summary ", 200)
	if r := do(t, "PUT", base+"/v1/listings/"+ids[0], big); r.status != 507 {
		t.Errorf("update on a full disk: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/v1/listings/"+ids[0], nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"version":1`)) {
		t.Errorf("read on a full disk: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/v1/listings?q=项目", nil); r.status != 200 {
		t.Errorf("search on a full disk: %d", r.status)
	}
	if r := do(t, "GET", base+"/readyz", nil); r.status != 200 {
		t.Errorf("/readyz on a full disk: %d %s (reads still work)", r.status, r.body)
	}
	metrics := do(t, "GET", base+"/metrics", nil).body
	if !bytes.Contains(metrics, []byte(`parkmesh_store_errors_total{class="full",store="xian-hitech-project.db"}`)) {
		t.Errorf("metrics lack the store's full-disk errors")
	}
	if n := strings.Count(logs.String(), `"msg":"store failing: full"`); n != 1 || !strings.Contains(logs.String(), "xian-hitech-project.db") {
		t.Errorf("%d log lines of the full disk naming the store; logs:\n%s", n, logs.String())
	}
	if _, err := m.Store().SetMaxPages(t.Context(), pages*8); err != nil { // space is freed
		t.Fatal(err)
	}
	if r := do(t, "POST", base+"/v1/listings", validBody(specs[1].Kind)); r.status != 201 {
		t.Fatalf("create once space is back: %d %s", r.status, r.body)
	}
	if got := lastSeq(t, base); got != seq+1 {
		t.Errorf("last seq after recovery = %d, want %d", got, seq+1)
	}
}

// /readyz turns 503, with the reason, once a read meets a damaged file,
// and ready again once the file checks out.
func TestReadyzReflectsAStoreThatStartedFailing(t *testing.T) {
	dir := t.TempDir()
	logs := &logbuf.Buffer{}
	m, err := openService(t, specs[2], dir, logs, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, m)
	for i := range 300 {
		b := validBody(specs[2].Kind)
		b["title"] = fmt.Sprintf("人才 %d", i)
		do(t, "POST", base+"/v1/listings", b)
	}
	path := m.DBPath()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, sqlitefiletest.Garble(good, len(good)/2/4096*4096, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	// Reads and writes until one meets the damage (a write makes the
	// readers drop what they cached).
	failed := false
	for i := 0; i < 100 && !failed; i++ {
		for _, r := range []resp{
			do(t, "POST", base+"/v1/listings", validBody(specs[2].Kind)),
			do(t, "GET", fmt.Sprintf("%s/v1/listings?q=人才+%d", base, i), nil),
			do(t, "GET", base+"/v1/changes?after=0&limit=1000", nil),
		} {
			failed = failed || r.status == 503
		}
	}
	if !failed {
		t.Fatal("no request met the damage")
	}
	r := do(t, "GET", base+"/readyz", nil)
	if r.status != 503 || !bytes.Contains(r.body, []byte("xian-hitech-talent.db")) || !bytes.Contains(r.body, []byte("corrupt")) {
		t.Fatalf("/readyz on a damaged store: %d %s", r.status, r.body)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil { // the file is whole again
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for do(t, "GET", base+"/readyz", nil).status != 200 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if r := do(t, "GET", base+"/readyz", nil); r.status != 200 {
		t.Fatalf("/readyz after the file was restored: %d %s", r.status, r.body)
	}
}
