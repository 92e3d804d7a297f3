package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

const projectBody = `{"title":"纳米超级铜 Nano copper","sectors":["new-materials"],"country":"CN","attrs":{"stage":"pilot"}}`

// consulServices returns, per service name, the number of instances with
// passing checks in the park's Consul catalog.
func consulServices(t *testing.T, p *nodetest.Park) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, name := range []string{"parkmesh-directory", "parkmesh-project", "parkmesh-talent", "parkmesh-gateway"} {
		entries, _, err := p.Agent.Client().Health().Service(name, "", true, nil)
		if err != nil {
			return nil
		}
		out[name] = len(entries)
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func allRegistered(t *testing.T, p *nodetest.Park, n int) func() bool {
	return func() bool {
		got := consulServices(t, p)
		for _, c := range got {
			if c != n {
				return false
			}
		}
		return len(got) == 4
	}
}

func TestRegistrationHealthAndDeregistrationOnSIGTERM(t *testing.T) {
	p := nodetest.StartPark(t, "xian-hitech")
	waitFor(t, "all four processes registered with passing health", 20*time.Second, allRegistered(t, p, 1))
	// Meta carries the park.
	entries, _, err := p.Agent.Client().Health().Service("parkmesh-project", "", true, nil)
	if err != nil || len(entries) != 1 || entries[0].Service.Meta["park"] != "xian-hitech" {
		t.Fatalf("project registration: %+v %v", entries, err)
	}
	for _, k := range listing.Kinds {
		if err := p.Services[k][0].Terminate(t); err != nil {
			t.Errorf("%s exit after SIGTERM: %v", k, err)
		}
	}
	if err := p.Gateway.Terminate(t); err != nil {
		t.Errorf("gateway exit after SIGTERM: %v", err)
	}
	// Deregistered, not merely failing: gone from the catalog.
	for _, name := range []string{"parkmesh-directory", "parkmesh-project", "parkmesh-talent", "parkmesh-gateway"} {
		services, _, err := p.Agent.Client().Catalog().Service(name, "", nil)
		if err != nil || len(services) != 0 {
			t.Errorf("%s still in the catalog after SIGTERM: %d %v", name, len(services), err)
		}
	}
}

func TestGatewayCRUDAndSearch(t *testing.T) {
	p := nodetest.StartPark(t, "chengdu-hitech")
	ctx := t.Context()
	editor := p.Token(parktoken.Editor)
	status, body := p.Do(ctx, "POST", "/api/v1/projects", editor, strings.NewReader(projectBody))
	if status != 201 {
		t.Fatalf("create through gateway: %d %s", status, body)
	}
	var created listing.Listing
	json.Unmarshal(body, &created)
	if created.Park != "chengdu-hitech" || !listing.ValidID(listing.KindProject, created.ID) {
		t.Fatalf("created = %+v", created)
	}
	status, body = p.Do(ctx, "GET", "/api/v1/projects/"+created.ID, p.Token(parktoken.Viewer), nil)
	if status != 200 {
		t.Fatalf("get: %d %s", status, body)
	}
	status, _ = p.Do(ctx, "PUT", "/api/v1/projects/"+created.ID, editor, strings.NewReader(projectBody), "If-Match", `"7"`)
	if status != 412 {
		t.Errorf("stale PUT through gateway: %d, want 412", status)
	}
	org := `{"title":"硅谷离岸创新中心 Offshore Centre","sectors":["ai"],"country":"US","attrs":{"org_type":"incubator"}}`
	if status, body := p.Do(ctx, "POST", "/api/v1/organizations", editor, strings.NewReader(org)); status != 201 {
		t.Fatalf("create org: %d %s", status, body)
	}
	status, body = p.Do(ctx, "GET", "/api/v1/search?q=copper", p.Token(parktoken.Viewer), nil)
	var res struct {
		Results []listing.Listing
		Partial bool
		Parks   struct {
			Total, OK int
			Details   []struct{ Park, Status string }
		}
	}
	json.Unmarshal(body, &res)
	if status != 200 || len(res.Results) != 1 || res.Results[0].ID != created.ID || res.Partial || res.Parks.OK != 1 {
		t.Fatalf("search: %d %s", status, body)
	}
	// Paging across kinds with a cursor returns each listing once.
	seen := map[string]bool{}
	cursor := ""
	for i := 0; ; i++ {
		path := "/api/v1/search?limit=1"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		status, body = p.Do(ctx, "GET", path, p.Token(parktoken.Viewer), nil)
		var page struct {
			Results    []listing.Listing
			NextCursor string `json:"next_cursor"`
		}
		json.Unmarshal(body, &page)
		if status != 200 {
			t.Fatalf("page %d: %d %s", i, status, body)
		}
		for _, r := range page.Results {
			if seen[r.ID] {
				t.Errorf("%s twice", r.ID)
			}
			seen[r.ID] = true
		}
		if page.NextCursor == "" || i > 5 {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != 2 {
		t.Errorf("paged search saw %d listings, want 2", len(seen))
	}
	// An edited cursor is refused.
	if status, body := p.Do(ctx, "GET", "/api/v1/search?limit=1&cursor=x"+cursor, p.Token(parktoken.Viewer), nil); status != 400 || !strings.Contains(string(body), `"field":"cursor"`) {
		t.Errorf("edited cursor: %d %s", status, body)
	}
	for _, c := range []struct {
		path   string
		status int
	}{{"/api/v1/widgets", 404}, {"/api/v1/widgets/1", 404}, {"/nope", 404}, {"/api/v1/search?scope=galaxy", 400}} {
		if status, body := p.Do(ctx, "GET", c.path, p.Token(parktoken.Viewer), nil); status != c.status || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET %s: %d %s, want %d with a JSON error", c.path, status, body, c.status)
		}
	}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestParkLocalTokens(t *testing.T) {
	p := nodetest.StartPark(t, "xian-hitech")
	ctx := t.Context()
	now := time.Now()
	expired, err := parktoken.Issue(p.Keys, p.ID, "old", parktoken.Admin, time.Minute, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := parkkey.FromKeys(p.ID, otherPriv)
	forged, err := parktoken.Issue(other, p.ID, "mallory", parktoken.Admin, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	kid := p.Keys.Current().ID
	none := b64(map[string]string{"alg": "none", "typ": parktoken.TokenType, "kid": kid}) + "." +
		b64(map[string]any{"iss": p.ID, "aud": p.ID, "sub": "x", "role": "admin", "jti": "j", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}) + "."
	cases := []struct {
		name, token, method string
		status              int
	}{
		{"no token", "", "GET", 401},
		{"garbage", "abc.def.ghi", "GET", 401},
		{"expired", expired, "GET", 401},
		{"signed by another key", forged, "GET", 401},
		{"alg none", none, "GET", 401},
		{"viewer may not write", p.Token(parktoken.Viewer), "POST", 403},
		{"viewer may read", p.Token(parktoken.Viewer), "GET", 200},
		{"editor may write", p.Token(parktoken.Editor), "POST", 201},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body *strings.Reader
			path := "/api/v1/projects"
			if c.method == "POST" {
				body = strings.NewReader(projectBody)
			} else {
				path += "?limit=1"
			}
			var status int
			var b []byte
			if body != nil {
				status, b = p.Do(ctx, c.method, path, c.token, body)
			} else {
				status, b = p.Do(ctx, c.method, path, c.token, nil)
			}
			if status != c.status {
				t.Fatalf("status %d (%s), want %d", status, b, c.status)
			}
			if status == 401 && !strings.Contains(string(b), "missing or invalid access token") {
				t.Errorf("401 body gives detail: %s", b)
			}
		})
	}
	// Refusals are counted by reason.
	_, metrics := p.Do(ctx, "GET", "/metrics", "", nil)
	for _, reason := range []string{"missing", "expired", "alg"} {
		if !strings.Contains(string(metrics), fmt.Sprintf(`parkmesh_gateway_auth_failures_total{reason=%q,side="park"}`, reason)) {
			t.Errorf("no auth failure metric for reason %q", reason)
		}
	}
}

func TestFailoverAndNewInstances(t *testing.T) {
	p := nodetest.StartPark(t, "siliconvalley-offshore")
	ctx := t.Context()
	viewer := p.Token(parktoken.Viewer)
	second := p.StartService(listing.KindProject, t.TempDir())
	p.WaitInstances(map[listing.Kind]int{listing.KindProject: 2}, 20*time.Second)
	p.Services[listing.KindProject][0].Kill()
	for i := range 10 {
		if status, body := p.Do(ctx, "GET", "/api/v1/projects?limit=1", viewer, nil); status != 200 {
			t.Fatalf("request %d after killing the first instance: %d %s", i, status, body)
		}
	}
	// The dead instance's health check fails and the gateway drops it.
	p.WaitInstances(map[listing.Kind]int{listing.KindProject: 1}, 20*time.Second)
	// A third instance registers later; then the second dies: traffic moves
	// to the newcomer.
	p.StartService(listing.KindProject, t.TempDir())
	p.WaitInstances(map[listing.Kind]int{listing.KindProject: 2}, 20*time.Second)
	second.Kill()
	for i := range 10 {
		if status, body := p.Do(ctx, "GET", "/api/v1/projects?limit=1", viewer, nil); status != 200 {
			t.Fatalf("request %d after killing the second instance: %d %s", i, status, body)
		}
	}
	if status, body := p.Do(ctx, "POST", "/api/v1/projects", p.Token(parktoken.Editor), strings.NewReader(projectBody)); status != 201 {
		t.Fatalf("write after failover: %d %s", status, body)
	}
}

func TestAllInstancesOfAKindDown(t *testing.T) {
	p := nodetest.StartPark(t, "xian-hitech")
	p.Services[listing.KindTalent][0].Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	start := time.Now()
	status, body := p.Do(ctx, "GET", "/api/v1/talent?limit=1", p.Token(parktoken.Viewer), nil)
	if status != 503 || !strings.Contains(string(body), "talent") {
		t.Fatalf("all talent instances down: %d %s, want 503 naming talent", status, body)
	}
	if took := time.Since(start); took > 11*time.Second {
		t.Errorf("503 took %s, more than the gateway's 10s deadline", took)
	}
	// The other kinds still answer.
	if status, _ := p.Do(ctx, "GET", "/api/v1/projects?limit=1", p.Token(parktoken.Viewer), nil); status != 200 {
		t.Errorf("projects while talent is down: %d", status)
	}
}

func TestConsulDownAndRestart(t *testing.T) {
	p := nodetest.StartPark(t, "chengdu-hitech")
	ctx := t.Context()
	waitFor(t, "all registered", 20*time.Second, allRegistered(t, p, 1))
	p.Agent.Stop()
	// The gateway keeps answering from its last known instances.
	for i := range 5 {
		if status, body := p.Do(ctx, "POST", "/api/v1/projects", p.Token(parktoken.Editor), strings.NewReader(projectBody)); status != 201 {
			t.Fatalf("write %d with Consul down: %d %s", i, status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status, _ := p.Do(ctx, "GET", "/api/v1/search?q=copper", p.Token(parktoken.Viewer), nil); status != 200 {
		t.Fatalf("search with Consul down: %d", status)
	}
	// A restarted (empty) agent gets every process back within 15 s, with
	// no process restarted.
	p.Agent.Restart(t)
	waitFor(t, "every process registered again", 15*time.Second, allRegistered(t, p, 1))
	for _, k := range listing.Kinds {
		if p.Services[k][0].Exited() {
			t.Errorf("%s process exited", k)
		}
	}
}
