package listingservice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

var specs = []listingservice.Spec{
	listingservice.SpecOf(listing.KindOrganization),
	listingservice.SpecOf(listing.KindProject),
	listingservice.SpecOf(listing.KindTalent),
}

// startService runs the real Main (real SQLite file in dir, real HTTP on a
// loopback port) and returns its base URL and a stop function that shuts
// it down gracefully and waits.
func startService(t *testing.T, spec listingservice.Spec, dir string) (string, func()) {
	t.Helper()
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
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	t.Cleanup(stop)
	return "http://" + m.Addr(), stop
}

func validBody(k listing.Kind) map[string]any {
	b := map[string]any{
		"title":      "纳米超级铜研究院 Nano Super-Copper Institute",
		"summary":    "新材料 research on copper with 硅谷 partners",
		"sectors":    []string{"new-materials"},
		"country":    "CN",
		"city":       "西安",
		"seeking":    []string{"investment", "partner"},
		"visibility": "club",
	}
	switch k {
	case listing.KindOrganization:
		b["attrs"] = map[string]any{"org_type": "lab", "website": "https://example.org", "founded": 2019}
	case listing.KindProject:
		b["attrs"] = map[string]any{"stage": "pilot", "trl": 6, "funding_ask": map[string]any{"amount": 5000000, "currency": "CNY"}}
	case listing.KindTalent:
		b["attrs"] = map[string]any{"expertise": []string{"metallurgy"}, "languages": []string{"zh", "en"}, "availability": []string{"mentor"}}
	}
	return b
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func do(t *testing.T, method, url string, body any, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	req, _ := http.NewRequest(method, url, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func TestCRUDRoundTripEachKind(t *testing.T) {
	for _, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			base, _ := startService(t, spec, t.TempDir())
			r := do(t, "POST", base+"/v1/listings", validBody(spec.Kind))
			if r.status != http.StatusCreated {
				t.Fatalf("create: %d %s", r.status, r.body)
			}
			var created listing.Listing
			r.decode(t, &created)
			if !listing.ValidID(spec.Kind, created.ID) || created.Park != "xian-hitech" || created.Kind != spec.Kind || created.Version != 1 {
				t.Fatalf("created = %+v", created)
			}
			if loc := r.header.Get("Location"); loc != "/v1/listings/"+created.ID {
				t.Errorf("Location = %q", loc)
			}
			r = do(t, "GET", base+"/v1/listings/"+created.ID, nil)
			var got listing.Listing
			r.decode(t, &got)
			if r.status != 200 || got.Title != created.Title || r.header.Get("ETag") != `"1"` {
				t.Fatalf("get: %d %+v etag %s", r.status, got, r.header.Get("ETag"))
			}
			upd := validBody(spec.Kind)
			upd["title"] = "更新 Updated"
			r = do(t, "PUT", base+"/v1/listings/"+created.ID, upd, "If-Match", `"1"`)
			var updated listing.Listing
			r.decode(t, &updated)
			if r.status != 200 || updated.Version != 2 || updated.Title != "更新 Updated" || !updated.CreatedAt.Equal(created.CreatedAt) {
				t.Fatalf("update: %d %+v", r.status, updated)
			}
			stale := validBody(spec.Kind)
			stale["title"] = "stale write"
			r = do(t, "PUT", base+"/v1/listings/"+created.ID, stale, "If-Match", `"1"`)
			if r.status != http.StatusPreconditionFailed {
				t.Fatalf("stale update: %d %s, want 412", r.status, r.body)
			}
			r = do(t, "GET", base+"/v1/listings/"+created.ID, nil)
			r.decode(t, &got)
			if got.Title != "更新 Updated" {
				t.Errorf("stale update was applied: %q", got.Title)
			}
			if r := do(t, "DELETE", base+"/v1/listings/"+created.ID, nil, "If-Match", "1"); r.status != http.StatusPreconditionFailed {
				t.Errorf("stale delete: %d", r.status)
			}
			if r := do(t, "DELETE", base+"/v1/listings/"+created.ID, nil, "If-Match", "2"); r.status != http.StatusNoContent {
				t.Fatalf("delete: %d %s", r.status, r.body)
			}
			if r := do(t, "GET", base+"/v1/listings/"+created.ID, nil); r.status != http.StatusNotFound {
				t.Errorf("get after delete: %d", r.status)
			}
			// The changes read holds the listing once, as it is now: a
			// tombstone at its latest change, with no content.
			r = do(t, "GET", base+"/v1/changes?after=0", nil)
			var ch listingservice.ChangesPage
			r.decode(t, &ch)
			var ops []string
			for _, c := range ch.Changes {
				ops = append(ops, fmt.Sprintf("%s:v%d@%d first %d", c.Op, c.Version, c.Seq, c.FirstSeq))
			}
			if got, want := strings.Join(ops, ","), "deleted:v3@3 first 1"; got != want {
				t.Errorf("changes = %s, want %s", got, want)
			}
			if bytes.Contains(r.body, []byte(`"listing"`)) || bytes.Contains(r.body, []byte("Updated")) || !bytes.Contains(r.body, []byte(`"audience":{"club":true}`)) {
				t.Errorf("tombstone on the wire: %s", r.body)
			}
		})
	}
}

type apiError struct {
	Error struct{ Code, Message, Field string } `json:"error"`
}

func TestBadInputIsRefusedAndNothingWritten(t *testing.T) {
	spec := specs[1] // project
	base, _ := startService(t, spec, t.TempDir())
	r := do(t, "POST", base+"/v1/listings", validBody(spec.Kind))
	if r.status != 201 {
		t.Fatalf("seed: %d %s", r.status, r.body)
	}
	var existing listing.Listing
	r.decode(t, &existing)
	with := func(k string, v any) map[string]any {
		b := validBody(spec.Kind)
		b[k] = v
		return b
	}
	without := func(k string) map[string]any {
		b := validBody(spec.Kind)
		delete(b, k)
		return b
	}
	attrs := func(k string, v any) map[string]any {
		b := validBody(spec.Kind)
		b["attrs"].(map[string]any)[k] = v
		return b
	}
	huge := with("summary", strings.Repeat("长", 400_000)) // > 1 MiB in UTF-8
	cases := []struct {
		name, method, path string
		body               any
		hdr                []string
		status             int
		field              string
	}{
		{"malformed JSON", "POST", "/v1/listings", `{"title": "x",`, nil, 400, "body"},
		{"not an object", "POST", "/v1/listings", `[1,2]`, nil, 400, "body"},
		{"trailing data", "POST", "/v1/listings", `{"title":"a"} {"title":"b"}`, nil, 400, "body"},
		{"empty body", "POST", "/v1/listings", "", nil, 400, "body"},
		{"unknown field", "POST", "/v1/listings", with("colour", "red"), nil, 400, "colour"},
		{"wrong type", "POST", "/v1/listings", with("title", 42), nil, 400, "title"},
		{"wrong nested type", "POST", "/v1/listings", attrs("trl", "six"), nil, 400, "attrs.trl"},
		{"missing title", "POST", "/v1/listings", without("title"), nil, 400, "title"},
		{"missing sectors", "POST", "/v1/listings", without("sectors"), nil, 400, "sectors"},
		{"missing country", "POST", "/v1/listings", without("country"), nil, 400, "country"},
		{"sector outside vocabulary", "POST", "/v1/listings", with("sectors", []string{"space-mining"}), nil, 400, "sectors[0]"},
		{"seeking outside vocabulary", "POST", "/v1/listings", with("seeking", []string{"money"}), nil, 400, "seeking[0]"},
		{"bad country", "POST", "/v1/listings", with("country", "XX"), nil, 400, "country"},
		{"bad visibility", "POST", "/v1/listings", with("visibility", "public"), nil, 400, "visibility"},
		{"peers without share_with", "POST", "/v1/listings", with("visibility", "peers"), nil, 400, "share_with"},
		{"stage outside vocabulary", "POST", "/v1/listings", attrs("stage", "mature"), nil, 400, "attrs.stage"},
		{"trl out of range", "POST", "/v1/listings", attrs("trl", 12), nil, 400, "attrs.trl"},
		{"talent attr on a project", "POST", "/v1/listings", attrs("languages", []string{"zh"}), nil, 400, "attrs.languages"},
		{"over-long title", "POST", "/v1/listings", with("title", strings.Repeat("硅", listing.MaxTitle+1)), nil, 400, "title"},
		{"over-long tag", "POST", "/v1/listings", with("tags", []string{strings.Repeat("a", 101)}), nil, 400, "tags[0]"},
		{"oversize body", "POST", "/v1/listings", huge, nil, 400, "body"},
		{"wrong content type", "POST", "/v1/listings", validBody(spec.Kind), []string{"Content-Type", "text/plain"}, 400, "Content-Type"},
		{"update: bad If-Match", "PUT", "/v1/listings/" + existing.ID, validBody(spec.Kind), []string{"If-Match", "abc"}, 400, "If-Match"},
		{"update: id mismatch", "PUT", "/v1/listings/" + existing.ID, with("id", listing.NewID(listing.KindProject, time.Now())), nil, 400, "id"},
		{"update: invalid body", "PUT", "/v1/listings/" + existing.ID, with("sectors", []string{}), nil, 400, "sectors"},
		{"limit zero", "GET", "/v1/listings?limit=0", nil, nil, 400, "limit"},
		{"limit too big", "GET", "/v1/listings?limit=101", nil, nil, 400, "limit"},
		{"limit not a number", "GET", "/v1/listings?limit=ten", nil, nil, 400, "limit"},
		{"tampered cursor", "GET", "/v1/listings?cursor=eyJxIjoiMDAifQ.AAAA", nil, nil, 400, "cursor"},
		{"unknown search parameter", "GET", "/v1/listings?sector=ai", nil, nil, 400, "sector"},
		{"filter of another kind", "GET", "/v1/listings?availability=mentor", nil, nil, 400, "availability"},
		{"sector filter outside vocabulary", "GET", "/v1/listings?sectors=ai,nope", nil, nil, 400, "sectors"},
		{"bad updated_since", "GET", "/v1/listings?updated_since=yesterday", nil, nil, 400, "updated_since"},
		{"over-long query", "GET", "/v1/listings?q=" + strings.Repeat("x", 201), nil, nil, 400, "q"},
		{"bad after", "GET", "/v1/changes?after=-1", nil, nil, 400, "after"},
		{"wait too long", "GET", "/v1/changes?wait=10m", nil, nil, 400, "wait"},
		{"unknown id", "GET", "/v1/listings/prj_01JAAAAAAAAAAAAAAAAAAAAAAA", nil, nil, 404, ""},
		{"malformed id", "GET", "/v1/listings/nope", nil, nil, 404, ""},
		{"unknown id update", "PUT", "/v1/listings/prj_01JAAAAAAAAAAAAAAAAAAAAAAA", validBody(spec.Kind), nil, 404, ""},
		{"unknown id delete", "DELETE", "/v1/listings/prj_01JAAAAAAAAAAAAAAAAAAAAAAA", nil, nil, 404, ""},
		{"unknown route", "GET", "/v2/listings", nil, nil, 404, ""},
	}
	seqBefore := lastSeq(t, base)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, base+c.path, c.body, c.hdr...)
			if r.status != c.status {
				t.Fatalf("status = %d (%s), want %d", r.status, r.body, c.status)
			}
			var e apiError
			r.decode(t, &e)
			if e.Error.Field != c.field || e.Error.Code == "" || e.Error.Message == "" {
				t.Errorf("error = %+v, want field %q", e.Error, c.field)
			}
		})
	}
	if got := lastSeq(t, base); got != seqBefore {
		t.Errorf("change log moved from %d to %d: something was written", seqBefore, got)
	}
	var page listing.Page
	do(t, "GET", base+"/v1/listings", nil).decode(t, &page)
	if len(page.Results) != 1 || page.Results[0].Version != 1 || page.Results[0].Title != existing.Title {
		t.Errorf("listings after bad input: %+v", page.Results)
	}
}

func lastSeq(t *testing.T, base string) int64 {
	t.Helper()
	var ch listingservice.ChangesPage
	do(t, "GET", base+"/v1/changes?after=0&limit=1000", nil).decode(t, &ch)
	return ch.Next
}

func TestRestartKeepsDataAndSequence(t *testing.T) {
	dir := t.TempDir()
	spec := specs[2]
	base, stop := startService(t, spec, dir)
	var ids []string
	for i := range 3 {
		b := validBody(spec.Kind)
		b["title"] = fmt.Sprintf("人才 %d", i)
		r := do(t, "POST", base+"/v1/listings", b)
		var l listing.Listing
		r.decode(t, &l)
		ids = append(ids, l.ID)
	}
	seq := lastSeq(t, base)
	stop()
	base2, _ := startService(t, spec, dir)
	if got := lastSeq(t, base2); got != seq || seq != 3 {
		t.Fatalf("last seq after restart = %d, before = %d", got, seq)
	}
	for _, id := range ids {
		if r := do(t, "GET", base2+"/v1/listings/"+id, nil); r.status != 200 {
			t.Errorf("get %s after restart: %d", id, r.status)
		}
	}
	r := do(t, "POST", base2+"/v1/listings", validBody(spec.Kind))
	if r.status != 201 {
		t.Fatal(r.status)
	}
	var ch listingservice.ChangesPage
	do(t, "GET", fmt.Sprintf("%s/v1/changes?after=%d", base2, seq), nil).decode(t, &ch)
	if len(ch.Changes) != 1 || ch.Changes[0].Seq != seq+1 {
		t.Errorf("changes after restart = %+v", ch)
	}
}

func TestLongPollReturnsWhenAChangeLands(t *testing.T) {
	spec := specs[1]
	base, _ := startService(t, spec, t.TempDir())
	type result struct {
		page listingservice.ChangesPage
		took time.Duration
	}
	got := make(chan result, 1)
	start := time.Now()
	go func() {
		var p listingservice.ChangesPage
		res, err := http.Get(base + "/v1/changes?after=0&wait=25s")
		if err == nil {
			json.NewDecoder(res.Body).Decode(&p)
			res.Body.Close()
		}
		got <- result{p, time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond) // let the poll start waiting
	select {
	case r := <-got:
		t.Fatalf("long-poll returned before any change: %+v", r.page)
	default:
	}
	r := do(t, "POST", base+"/v1/listings", validBody(spec.Kind))
	if r.status != 201 {
		t.Fatal(r.status)
	}
	select {
	case res := <-got:
		if len(res.page.Changes) != 1 || res.page.Changes[0].Op != listing.OpCreated || res.page.Next != 1 {
			t.Errorf("long-poll answer = %+v", res.page)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long-poll did not return after a change landed")
	}
	// With nothing new, a poll waits out its wait and answers empty.
	var p listingservice.ChangesPage
	do(t, "GET", base+"/v1/changes?after=1&wait=100ms", nil).decode(t, &p)
	if len(p.Changes) != 0 || p.Next != 1 {
		t.Errorf("empty poll = %+v", p)
	}
}

func TestProbesAndMetrics(t *testing.T) {
	base, _ := startService(t, specs[0], t.TempDir())
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := do(t, "GET", base+path, nil); r.status != 200 {
			t.Errorf("%s: %d", path, r.status)
		}
	}
	do(t, "GET", base+"/v1/listings?q=硅谷", nil)
	r := do(t, "GET", base+"/metrics", nil)
	if !bytes.Contains(r.body, []byte(`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="GET /v1/listings"} 1`)) {
		t.Errorf("metrics lack the search request:\n%s", r.body)
	}
}

// A long-poll in flight does not hold up a graceful shutdown.
func TestShutdownEndsLongPolls(t *testing.T) {
	base, stop := startService(t, specs[1], t.TempDir())
	polled := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		res, err := http.Get(base + "/v1/changes?after=0&wait=25s")
		if err == nil {
			res.Body.Close()
		}
		polled <- time.Since(t0)
	}()
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	stop()
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("shutdown took %s with a long-poll in flight", took)
	}
	if d := <-polled; d > 10*time.Second {
		t.Errorf("the long-poll lasted %s past shutdown", d)
	}
}
