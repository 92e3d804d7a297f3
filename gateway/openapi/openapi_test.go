package openapi_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/clubsearch"
	"github.com/parkmesh/parkmesh/gateway/credentials"
	"github.com/parkmesh/parkmesh/gateway/fedapi"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/gateway/interests"
	"github.com/parkmesh/parkmesh/gateway/openapi"
	"github.com/parkmesh/parkmesh/gateway/parkapi"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/gateway/session"
	"github.com/parkmesh/parkmesh/gateway/sse"
	"github.com/parkmesh/parkmesh/gateway/webhook"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

func newValidator(t *testing.T) *openapi.Validator {
	t.Helper()
	v, err := openapi.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDocumentIsValidOpenAPI31(t *testing.T) {
	v := newValidator(t)
	if err := v.ValidateDocument(); err != nil {
		t.Fatalf("the document does not validate against the OpenAPI 3.1 schema:\n%v", err)
	}
	var fromJSON, fromYAML map[string]any
	if err := json.Unmarshal(openapi.JSON(), &fromJSON); err != nil {
		t.Fatalf("JSON() is not JSON: %v", err)
	}
	if err := yaml.Unmarshal(openapi.YAML(), &fromYAML); err != nil {
		t.Fatalf("YAML() is not YAML: %v", err)
	}
	if got := fromJSON["openapi"]; got != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", got)
	}
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Error("JSON() and YAML() describe different documents")
	}
}

// document returns the YAML document as plain maps, to read what the
// validator's model does not expose (extensions, tags).
func document(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(openapi.YAML(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// gatewayRoutes returns the patterns the gateway's park-side API and
// federation API register, with {kind} expanded to the three collections
// (the document lists each collection as its own path, so each has its own
// schemas).
func gatewayRoutes(t *testing.T) (park, federation []string) {
	t.Helper()
	collect := func(register func(*http.ServeMux, func(string, http.Handler) http.Handler)) []string {
		var out []string
		register(http.NewServeMux(), func(pattern string, h http.Handler) http.Handler {
			if strings.Contains(pattern, "/api/v1/{kind}") {
				for _, c := range []string{"organizations", "projects", "talent"} {
					out = append(out, strings.Replace(pattern, "{kind}", c, 1))
				}
			} else {
				out = append(out, pattern)
			}
			return h
		})
		return out
	}
	api := &parkapi.API{Services: noServices{}, Club: &clubsearch.Club{}, Webhooks: &webhook.Webhooks{}, Index: &clubindex.Index{},
		Credentials: &credentials.Credentials{}, Interests: &interests.Service{}}
	park = collect(api.Routes)
	park = append(park, collect((&session.Manager{OIDC: &session.OIDC{}}).Routes)...)
	federation = collect((&fedapi.API{Interests: &interests.Service{}}).Routes)
	if len(park) == 0 || len(federation) == 0 {
		t.Fatalf("no routes registered: park %v, federation %v", park, federation)
	}
	return park, federation
}

// registeredByMain are the park-side routes the gateway's composition root
// registers itself, so gatewayRoutes cannot see them.
var registeredByMain = []string{
	"GET /api/v1/openapi.json", "GET /healthz", "GET /readyz", "GET /metrics",
	"GET /", "GET /portal/{asset}", "GET /favicon.ico",
}

func TestEveryRouteIsDocumentedOnItsListener(t *testing.T) {
	v := newValidator(t)
	ops := v.Operations()
	park, federation := gatewayRoutes(t)
	park = append(park, registeredByMain...)
	doc := document(t)
	paths := doc["paths"].(map[string]any)
	check := func(route, listener string) {
		if !slices.Contains(ops, route) {
			t.Errorf("%s is served but not documented", route)
			return
		}
		method, path, _ := strings.Cut(route, " ")
		item := paths[path].(map[string]any)
		if got := item["x-parkmesh-listener"]; got != listener {
			t.Errorf("%s: x-parkmesh-listener = %v, want %s", path, got, listener)
		}
		op := item[strings.ToLower(method)].(map[string]any)
		if tags, _ := op["tags"].([]any); len(tags) != 1 || tags[0] != listener {
			t.Errorf("%s: tags %v, want [%s]", route, op["tags"], listener)
		}
		if id, _ := op["operationId"].(string); id == "" {
			t.Errorf("%s has no operationId", route)
		}
		_, hasServers := item["servers"]
		if hasServers != (listener == "federation") {
			t.Errorf("%s: path-level servers %v; only federation paths name the federation server", path, hasServers)
		}
	}
	for _, r := range park {
		check(r, "park")
	}
	for _, r := range federation {
		check(r, "federation")
	}
	// And nothing is documented that the gateway does not serve.
	served := append(slices.Clone(park), federation...)
	for _, op := range ops {
		if !slices.Contains(served, op) {
			t.Errorf("%s is documented but the gateway registers no such route", op)
		}
	}
	// The search parameters of DESIGN.md and the gateway are all described.
	var searchParams []string
	for _, p := range paths["/api/v1/search"].(map[string]any)["get"].(map[string]any)["parameters"].([]any) {
		p := p.(map[string]any)
		if ref, ok := p["$ref"].(string); ok {
			p = doc["components"].(map[string]any)["parameters"].(map[string]any)[strings.TrimPrefix(ref, "#/components/parameters/")].(map[string]any)
		}
		searchParams = append(searchParams, p["name"].(string))
	}
	for _, want := range []string{"q", "sectors", "country", "seeking", "offering", "stage", "availability", "org_type",
		"updated_since", "limit", "cursor", "scope", "kinds", "parks", "exclude_parks", "required", "timeout_ms", "mode"} {
		if !slices.Contains(searchParams, want) {
			t.Errorf("search parameter %q is not documented (have %v)", want, searchParams)
		}
	}
}

// The vocabularies in the document are the Go ones, value for value.
func TestVocabulariesMatchTheListingPackage(t *testing.T) {
	schemas := document(t)["components"].(map[string]any)["schemas"].(map[string]any)
	for name, voc := range map[string]listing.Vocabulary{
		"Sector": listing.Sectors, "Need": listing.Needs, "OrgType": listing.OrgTypes, "OrgSize": listing.OrgSizes,
		"Stage": listing.Stages, "Availability": listing.Availabilities, "Currency": listing.Currencies,
	} {
		var got []string
		for _, e := range schemas[name].(map[string]any)["enum"].([]any) {
			got = append(got, fmt.Sprint(e))
		}
		if !slices.Equal(got, []string(voc)) {
			t.Errorf("%s enum = %v, want %v", name, got, voc)
		}
	}
	var lastErrors []string
	for _, e := range schemas["Delivery"].(map[string]any)["properties"].(map[string]any)["last_error"].(map[string]any)["enum"].([]any) {
		lastErrors = append(lastErrors, fmt.Sprint(e))
	}
	if !slices.Equal(lastErrors, webhook.LastErrors) {
		t.Errorf("Delivery.last_error enum = %v, want webhook.LastErrors %v", lastErrors, webhook.LastErrors)
	}
}

var now = time.Date(2026, 11, 30, 8, 0, 0, 123456789, time.UTC)

func project() *listing.Listing {
	return &listing.Listing{
		ID: listing.NewID(listing.KindProject, now), Park: "xian-hitech", Kind: listing.KindProject,
		Title: "纳米超级铜 Nano copper", Summary: "高导电纳米铜材料，寻找落地园区与投资。", Sectors: []string{"new-materials"},
		Tags: []string{"铜", "copper"}, Country: "CN", City: "西安", Seeking: []string{"landing", "investment"},
		Visibility: listing.Peers, ShareWith: []string{"chengdu-hitech"}, Version: 3, CreatedAt: now, UpdatedAt: now.Add(time.Hour),
		Attrs: listing.Attrs{Stage: "pilot", TRL: 6, FundingAsk: &listing.Money{Amount: 20_000_000, Currency: "CNY"},
			OwnerOrg: listing.NewID(listing.KindOrganization, now), LandingPreference: []string{"chengdu-hitech"}},
	}
}

func talent() *listing.Listing {
	return &listing.Listing{
		ID: listing.NewID(listing.KindTalent, now), Park: "siliconvalley-offshore", Kind: listing.KindTalent,
		Title: "Dr. Li Wei, battery chemist", Sectors: []string{"new-energy"}, Country: "US", Offering: []string{"mentoring"},
		Visibility: listing.Club, Version: 1, CreatedAt: now, UpdatedAt: now,
		Attrs: listing.Attrs{Expertise: []string{"solid-state batteries"}, Languages: []string{"zh", "en"},
			Availability: []string{"mentor", "returnee"}, Affiliation: "Stanford", YearsExperience: 12,
			Contact: &listing.Contact{Email: "li.wei@example.org"}, Consent: &listing.Consent{ShareContact: true}},
	}
}

func organization() *listing.Listing {
	return &listing.Listing{
		ID: listing.NewID(listing.KindOrganization, now), Park: "chengdu-hitech", Kind: listing.KindOrganization,
		Title: "成都高新区孵化器 Incubator", Sectors: []string{"ai", "information-technology"}, Country: "CN",
		Visibility: listing.Club, Version: 2, CreatedAt: now, UpdatedAt: now,
		Attrs: listing.Attrs{OrgType: "incubator", Website: "https://incubator.example.cn", Founded: 2001, Size: "11-50"},
	}
}

// answer is one recorded answer to check.
type answer struct {
	req    *http.Request
	status int
	header http.Header
	body   []byte
}

func jsonAnswer(t *testing.T, method, target string, status int, v any, hdr ...string) answer {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return answer{httptest.NewRequest(method, target, nil), status, h, b}
}

// errorAnswer is what apierror.Write, the one error writer, answers.
func errorAnswer(method, target string, err error, hdr ...string) answer {
	rec := httptest.NewRecorder()
	for i := 0; i+1 < len(hdr); i += 2 {
		rec.Header().Set(hdr[i], hdr[i+1])
	}
	apierror.Write(rec, err)
	return answer{httptest.NewRequest(method, target, nil), rec.Code, rec.Header(), rec.Body.Bytes()}
}

// realAnswers are answers built from the gateway's own types and writers,
// as the handlers build them.
func realAnswers(t *testing.T) map[string]answer {
	t.Helper()
	p, tal, org := project(), talent(), organization()
	etag := func(l *listing.Listing) string { return fmt.Sprintf("%q", fmt.Sprint(l.Version)) }
	dir := t.TempDir()
	ks, err := parkkey.Init(dir, "xian-hitech")
	if err != nil {
		t.Fatal(err)
	}
	fed := &peering.Federation{Park: "xian-hitech", Name: "西安高新区 Xi'an Hi-tech Zone", Country: "CN", PublicURL: "https://gw.xian-hitech.example"}
	proof, err := parktoken.IssueFederation(ks, "chengdu-hitech", parktoken.ScopePeering, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	found := search.Response{Results: []*listing.Listing{p, tal.ForPeers(), org}, NextCursor: "c1.opaque", Partial: true}
	found.Parks = search.ParkSummary{Total: 3, OK: 2, Timeout: 1, Details: []search.ParkStatus{
		{Park: "xian-hitech", Status: search.StatusOK, TookMS: 12, Hits: 1},
		{Park: "chengdu-hitech", Status: search.StatusOK, TookMS: 40, Hits: 2},
		{Park: "haifa-lifescience", Status: search.StatusTimeout, TookMS: 1970, Error: "no answer within the budget"},
	}}
	peer := clubsearch.PeerView{Park: "chengdu-hitech", URL: "https://gw.chengdu-hitech.example", Health: "ok", Breaker: "closed",
		LastSuccess: now, LastStatus: search.StatusOK, KeyIDs: []string{ks.Current().ID}, EstablishedAt: now}
	unknownPeer := clubsearch.PeerView{Park: "haifa-lifescience", URL: "http://127.0.0.1:9000", Health: "unavailable", Breaker: "open",
		LastError: "unreachable", LastErrorAt: now, LastStatus: search.StatusError, KeyIDs: []string{ks.Current().ID}, EstablishedAt: now}
	hook := webhook.Webhook{ID: "whk_Xk2N5p8Qr1Tv4Wy7", URL: "https://hooks.example.org/parkmesh", Secret: "0123456789abcdef-secret",
		Filter: feed.Filter{Kinds: []listing.Kind{listing.KindProject}, Sectors: []string{"new-materials"}, Parks: []string{"chengdu-hitech"}}, Created: now}
	listed := hook
	listed.Secret = ""
	return map[string]answer{
		"create project": jsonAnswer(t, "POST", "/api/v1/projects", 201, p, "ETag", etag(p), "Location", "/api/v1/projects/"+p.ID),
		"get talent":     jsonAnswer(t, "GET", "/api/v1/talent/"+tal.ID, 200, tal, "ETag", etag(tal)),
		"put org":        jsonAnswer(t, "PUT", "/api/v1/organizations/"+org.ID, 200, org, "ETag", etag(org)),
		"list projects":  jsonAnswer(t, "GET", "/api/v1/projects?limit=1", 200, listing.Page{Results: []*listing.Listing{p}, NextCursor: "n"}),
		"search":         jsonAnswer(t, "GET", "/api/v1/search?scope=club&q=copper", 200, found),
		"peers":          jsonAnswer(t, "GET", "/api/v1/peers", 200, map[string]any{"park": "xian-hitech", "peers": []clubsearch.PeerView{peer, unknownPeer}}),
		"webhook":        jsonAnswer(t, "POST", "/api/v1/webhooks", 201, hook),
		"webhooks":       jsonAnswer(t, "GET", "/api/v1/webhooks", 200, map[string]any{"webhooks": []webhook.Webhook{listed}}),
		"deliveries": jsonAnswer(t, "GET", "/api/v1/webhooks/"+hook.ID+"/deliveries?status=dead", 200, map[string]any{"deliveries": []webhook.Delivery{
			{ID: 7, Webhook: hook.ID, EventID: "xian-hitech/project/42", Attempts: 5, Status: "dead", LastError: webhook.LastError5xx, NextAt: now, UpdatedAt: now}}}),
		"identity": jsonAnswer(t, "GET", "/.well-known/parkmesh.json", 200, fed.Identity()),
		"jwks":     jsonAnswer(t, "GET", "/.well-known/jwks.json", 200, ks.JWKS(), "Cache-Control", "max-age=60"),
		"establish": jsonAnswer(t, "POST", "/federation/v1/peering/establish", 200, map[string]any{
			"park": "xian-hitech", "url": "https://gw.xian-hitech.example", "jwks": ks.JWKS(), "proof": proof}),
		"federation search":  jsonAnswer(t, "POST", "/federation/v1/search", 200, listing.Page{Results: []*listing.Listing{org}}),
		"federation listing": jsonAnswer(t, "GET", "/federation/v1/listings/projects/"+p.ID, 200, p.ForPeers()),
		"invalid field":      errorAnswer("GET", "/api/v1/search?scope=galaxy", apierror.InvalidField("scope", "must be local or club")),
		"unauthorized": errorAnswer("GET", "/api/v1/peers", apierror.New(apierror.Unauthorized, "missing or invalid access token"),
			"WWW-Authenticate", `Bearer realm="parkmesh"`),
		"federation unauthorized": errorAnswer("POST", "/federation/v1/search", apierror.New(apierror.Unauthorized, "missing or invalid access token"),
			"WWW-Authenticate", `Bearer realm="parkmesh-federation"`),
		"forbidden":           errorAnswer("DELETE", "/api/v1/peerings/chengdu-hitech", apierror.New(apierror.Forbidden, "your role does not permit this")),
		"webhook cap":         errorAnswer("POST", "/api/v1/webhooks", apierror.New(apierror.Conflict, "the park has 50 webhooks, the most it may have (-max-webhooks); delete one first")),
		"stale":               errorAnswer("PUT", "/api/v1/projects/"+p.ID, apierror.New(apierror.PreconditionFailed, "version 7 is not current")),
		"no instance":         errorAnswer("GET", "/api/v1/talent", apierror.New(apierror.Unavailable, "no healthy talent (talent) service instance answered")),
		"unknown route":       errorAnswer("GET", "/api/v1/widgets", apierror.New(apierror.NotFound, "no route GET /api/v1/widgets")),
		"internal error":      errorAnswer("GET", "/api/v1/webhooks", fmt.Errorf("disk I/O error")),
		"deleted":             {httptest.NewRequest("DELETE", "/api/v1/projects/"+p.ID, nil), 204, http.Header{}, nil},
		"stream":              {httptest.NewRequest("GET", "/api/v1/stream?sectors=ai", nil), 200, http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}}, []byte("id: s1.0.0.0.0\ndata: {}\n\n")},
		"metrics (not read)":  {httptest.NewRequest("GET", "/metrics", nil), 200, http.Header{"Content-Type": {"text/plain"}}, []byte("# anything")},
		"portal":              {httptest.NewRequest("GET", "/", nil), 200, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, []byte("<!doctype html>")},
		"readyz":              jsonAnswer(t, "GET", "/readyz", 200, map[string]any{"status": "ready", "instances": map[string]int{"organization": 1, "project": 2, "talent": 1}}),
		"healthz":             jsonAnswer(t, "GET", "/healthz", 200, map[string]string{"status": "ok"}),
		"peering token":       jsonAnswer(t, "POST", "/api/v1/peerings/tokens", 201, map[string]any{"token": peering.PeeringTokenPrefix + "eyJwYXJrIjoieCJ9", "peer": "chengdu-hitech", "expires_at": now}),
		"peering established": jsonAnswer(t, "POST", "/api/v1/peerings", 201, map[string]any{"park": "chengdu-hitech", "url": "https://gw.chengdu-hitech.example", "established_at": now}),
	}
}

func TestRealAnswersValidate(t *testing.T) {
	v := newValidator(t)
	for name, a := range realAnswers(t) {
		if err := v.Check(a.req, a.status, a.header, a.body); err != nil {
			t.Errorf("%s: %v\nbody: %s", name, err, a.body)
		}
	}
	// What travels inside the streams and webhook deliveries.
	p := project()
	data, _ := json.Marshal(p.ForPeers())
	ev := cloudEvent{SpecVersion: "1.0", ID: "xian-hitech/project/42", Source: "/parks/xian-hitech", Type: feed.TypeUpdated,
		Subject: p.ID, Time: now, DataContentType: "application/json", Data: data}
	withdrawn := ev
	withdrawn.Type = feed.TypeWithdrawn
	withdrawn.Data = json.RawMessage(fmt.Sprintf(`{"id":%q,"park":"xian-hitech","kind":"project","version":4}`, p.ID))
	for name, c := range map[string]struct {
		schema string
		v      any
	}{
		"updated event":   {"CloudEvent", ev},
		"withdrawn event": {"CloudEvent", withdrawn},
		"stream error": {"StreamError", sse.StreamError{Code: "too_slow", Message: "this subscriber is 60000 events behind; reconnect to resume",
			ResumeID: "v1.3.4.5"}},
	} {
		b, _ := json.Marshal(c.v)
		if err := v.CheckSchema(c.schema, b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The validator must be able to fail: each answer below is a real one with
// one thing wrong, and each must be refused.
func TestValidatorCatchesDrift(t *testing.T) {
	v := newValidator(t)
	good := realAnswers(t)
	mutate := func(name string, f func(m map[string]any)) func(answer) answer {
		return func(a answer) answer {
			var m map[string]any
			if err := json.Unmarshal(a.body, &m); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			f(m)
			a.body, _ = json.Marshal(m)
			return a
		}
	}
	cases := []struct {
		name, base string
		change     func(answer) answer
	}{
		{"an extra field on a listing", "create project", mutate("x", func(m map[string]any) { m["owner_email"] = "x@example.org" })},
		{"an extra field in attrs", "get talent", mutate("x", func(m map[string]any) { m["attrs"].(map[string]any)["salary"] = 1 })},
		{"another kind's attribute", "create project", mutate("x", func(m map[string]any) { m["attrs"].(map[string]any)["org_type"] = "lab" })},
		{"version as a string", "create project", mutate("x", func(m map[string]any) { m["version"] = "3" })},
		{"a time that is not RFC 3339", "put org", mutate("x", func(m map[string]any) { m["updated_at"] = "30/11/2026" })},
		{"a sector outside the vocabulary", "put org", mutate("x", func(m map[string]any) { m["sectors"] = []string{"crypto"} })},
		{"a missing required field", "get talent", mutate("x", func(m map[string]any) { delete(m, "park") })},
		{"an extra field in a park summary", "search", mutate("x", func(m map[string]any) { m["parks"].(map[string]any)["fresh"] = 1 })},
		{"a park status outside the enum", "search", mutate("x", func(m map[string]any) {
			m["parks"].(map[string]any)["details"].([]any)[0].(map[string]any)["status"] = "fresh"
		})},
		{"partial as a string", "search", mutate("x", func(m map[string]any) { m["partial"] = "false" })},
		{"a peer breaker state outside the enum", "peers", mutate("x", func(m map[string]any) {
			m["peers"].([]any)[0].(map[string]any)["breaker"] = "tripped"
		})},
		{"a webhook list that shows the secret", "webhooks", mutate("x", func(m map[string]any) {
			m["webhooks"].([]any)[0].(map[string]any)["secret"] = "0123456789abcdef-secret"
		})},
		{"a JWK of another key type", "jwks", mutate("x", func(m map[string]any) { m["keys"].([]any)[0].(map[string]any)["kty"] = "RSA" })},
		{"an error body with an extra field", "invalid field", mutate("x", func(m map[string]any) { m["error"].(map[string]any)["trace"] = "…" })},
		{"a 400 that names no field", "invalid field", mutate("x", func(m map[string]any) { delete(m["error"].(map[string]any), "field") })},
		{"a 400 whose code is not invalid", "invalid field", mutate("x", func(m map[string]any) { m["error"].(map[string]any)["code"] = "not_found" })},
		{"an undocumented status", "forbidden", func(a answer) answer { a.status = 418; return a }},
		{"a status the operation does not answer", "get talent", func(a answer) answer { a.status = 412; return a }},
		{"a listing without its ETag", "get talent", func(a answer) answer { a.header.Del("ETag"); return a }},
		{"a weak ETag", "get talent", func(a answer) answer { a.header.Set("ETag", `W/"1"`); return a }},
		{"a Location outside the park API", "create project", func(a answer) answer {
			a.header.Set("Location", "/v1/listings/"+strings.TrimPrefix(a.header.Get("Location"), "/api/v1/projects/"))
			return a
		}},
		{"a 401 without its challenge", "unauthorized", func(a answer) answer { a.header.Del("WWW-Authenticate"); return a }},
		{"a federation 401 with the park's challenge", "federation unauthorized", func(a answer) answer {
			a.header.Set("WWW-Authenticate", `Bearer realm="parkmesh"`)
			return a
		}},
		{"a JSON answer sent as text", "healthz", func(a answer) answer { a.header.Set("Content-Type", "text/plain"); return a }},
		{"a truncated body", "search", func(a answer) answer { a.body = a.body[:len(a.body)/2]; return a }},
		{"a stream that is not a stream", "stream", func(a answer) answer { a.header.Set("Content-Type", "application/json"); return a }},
		{"an unknown path answered 200", "healthz", func(a answer) answer { a.req = httptest.NewRequest("GET", "/api/v2/healthz", nil); return a }},
		{"an unknown path answered with HTML", "portal", func(a answer) answer {
			a.req, a.status = httptest.NewRequest("GET", "/api/v1/widgets", nil), 404
			return a
		}},
		{"an undocumented method", "deleted", func(a answer) answer { a.req = httptest.NewRequest("PATCH", a.req.URL.Path, nil); return a }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := good[c.base]
			a.header = a.header.Clone()
			if err := v.Check(a.req, a.status, a.header, a.body); err != nil {
				t.Fatalf("the unchanged answer already fails: %v", err)
			}
			a = c.change(a)
			err := v.Check(a.req, a.status, a.header, a.body)
			if err == nil {
				t.Fatalf("accepted: %d %s %s", a.status, a.header, a.body)
			}
			t.Logf("refused as expected: %v", err)
		})
	}
	// Inside a stream: a withdrawn event may not carry the listing, and a
	// created one must.
	p := project()
	full, _ := json.Marshal(p)
	for name, ev := range map[string]cloudEvent{
		"withdrawn with content": {SpecVersion: "1.0", ID: "xian-hitech/project/9", Source: "/parks/xian-hitech", Type: feed.TypeWithdrawn,
			Subject: p.ID, Time: now, DataContentType: "application/json", Data: full},
		"created without content": {SpecVersion: "1.0", ID: "xian-hitech/project/9", Source: "/parks/xian-hitech", Type: feed.TypeCreated,
			Subject: p.ID, Time: now, DataContentType: "application/json", Data: json.RawMessage(`{"id":"` + p.ID + `","park":"xian-hitech","kind":"project","version":4}`)},
		"another spec version": {SpecVersion: "0.3", ID: "xian-hitech/project/9", Source: "/parks/xian-hitech", Type: feed.TypeCreated,
			Subject: p.ID, Time: now, DataContentType: "application/json", Data: full},
	} {
		b, _ := json.Marshal(ev)
		if err := v.CheckSchema("CloudEvent", b); err == nil {
			t.Errorf("CloudEvent %s: accepted", name)
		}
	}
	if err := v.CheckSchema("NoSuchSchema", []byte(`{}`)); err == nil {
		t.Error("an unknown schema name is accepted")
	}
}

func TestHandlerServesTheDocument(t *testing.T) {
	v := newValidator(t)
	srv := httptest.NewServer(v.Middleware(openapi.Handler()))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || string(body) != string(openapi.JSON()) {
		t.Fatalf("GET: %d %q, %d bytes (want the %d of JSON())", res.StatusCode, res.Header.Get("Content-Type"), len(body), len(openapi.JSON()))
	}
	etag := res.Header.Get("ETag")
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/openapi.json", nil)
	req.Header.Set("If-None-Match", etag)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the current ETag: %d, want 304", res.StatusCode)
	}
	req.Header.Set("If-None-Match", `"0000000000000000"`)
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("If-None-Match with another ETag: %d, want 200", res.StatusCode)
	}
	if f := v.Failures(); len(f) != 0 {
		t.Errorf("the document's own answers do not match it: %v", f)
	}
	if got := v.Seen()["GET /api/v1/openapi.json"]; got[200] != 2 || got[304] != 1 {
		t.Errorf("seen %v, want two 200s and one 304", got)
	}
}

func TestMiddlewareRecordsFailuresAndPassesStreamsThrough(t *testing.T) {
	v := newValidator(t)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ready"}`)) // instances missing
	})
	mux.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(200)
		// As the gateway does: deadlines and flushes through a ResponseController.
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Time{}); err != nil {
			t.Errorf("SetWriteDeadline through the middleware: %v", err)
		}
		fmt.Fprintf(w, "id: s1.0.0.0.1\ndata: {}\n\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush through the middleware: %v", err)
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(v.Middleware(mux))
	defer srv.Close()
	defer close(release)
	for _, p := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	// The stream's first event arrives while the handler still runs, and
	// the stream is already checked.
	res, err := http.Get(srv.URL + "/api/v1/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(res.Body, buf, len("id: s1.0.0.0.1"))
	if !strings.HasPrefix(string(buf[:n]), "id: s1.0.0.0.1") {
		t.Fatalf("stream through the middleware: %q", buf[:n])
	}
	failures := v.Failures()
	if len(failures) != 1 || !strings.Contains(failures[0].Error(), "/readyz") {
		t.Fatalf("failures = %v, want exactly the /readyz answer without instances", failures)
	}
	seen := v.Seen()
	for _, op := range []string{"GET /healthz", "GET /readyz", "GET /api/v1/stream"} {
		if seen[op][200] != 1 {
			t.Errorf("%s seen %v, want one 200", op, seen[op])
		}
	}
}

func TestCheckWebhook(t *testing.T) {
	v := newValidator(t)
	p := project()
	data, _ := json.Marshal(p)
	body, _ := json.Marshal(cloudEvent{SpecVersion: "1.0", ID: "xian-hitech/project/5", Source: "/parks/xian-hitech",
		Type: feed.TypeCreated, Subject: p.ID, Time: now, DataContentType: "application/json", Data: data})
	header := http.Header{}
	header.Set("Content-Type", "application/cloudevents+json")
	header.Set("X-ParkMesh-Event-Id", "xian-hitech/project/5")
	header.Set(webhook.SignatureHeader, webhook.Sign("0123456789abcdef", time.Now(), body))
	if err := v.CheckWebhook("listingChange", header, body); err != nil {
		t.Fatalf("a real delivery: %v", err)
	}
	for name, change := range map[string]func(http.Header) http.Header{
		"no signature":     func(h http.Header) http.Header { h.Del(webhook.SignatureHeader); return h },
		"a bare signature": func(h http.Header) http.Header { h.Set(webhook.SignatureHeader, "deadbeef"); return h },
		"no event id":      func(h http.Header) http.Header { h.Del("X-ParkMesh-Event-Id"); return h },
		"plain JSON":       func(h http.Header) http.Header { h.Set("Content-Type", "application/json"); return h },
	} {
		if err := v.CheckWebhook("listingChange", change(header.Clone()), body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := v.CheckWebhook("listingChange", header, []byte(`{"specversion":"1.0"}`)); err == nil {
		t.Error("a delivery that is not a CloudEvent: accepted")
	}
}

// Keep the key helpers honest: the JWKS schema's pattern for x and kid
// must fit real Ed25519 keys of any value.
func TestJWKSchemaFitsRealKeys(t *testing.T) {
	v := newValidator(t)
	for range 20 {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		b, _ := json.Marshal(parkkey.JWKSet{Keys: []parkkey.JWK{parkkey.PublicJWK(pub)}})
		if err := v.CheckSchema("JWKS", b); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
}

// noServices stands in for the park's services: registering routes calls
// no service.
type noServices struct{}

func (noServices) For(listing.Kind) listingservice.Service { return nil }

// cloudEvent is a feed event as it is on the wire (CloudEvents 1.0 JSON).
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}
