package portal

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/gateway/interests"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

func TestPortalServesPageAndAssetsWithCSP(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, c := range []struct{ path, ctype, want string }{
		{"/", "text/html", `<script type="module" src="/portal/portal.js">`},
		{"/portal/portal.js", "text/javascript", `from "./api.js"`},
		{"/portal/api.js", "text/javascript", `"X-CSRF-Token"`},
		{"/portal/portal.css", "text/css", "main {"},
		{"/portal/i18n/messages.json", "application/json", `"sector.new-materials"`},
	} {
		res, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), c.ctype) || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: %d %s, body lacks %q", c.path, res.StatusCode, res.Header.Get("Content-Type"), c.want)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", c.path, csp)
		}
	}
	if res, _ := http.Get(srv.URL + "/favicon.ico"); res.StatusCode != 204 {
		t.Errorf("favicon: %d", res.StatusCode)
	}
	for _, p := range []string{"/portal/secret.txt", "/portal/", "/portal/i18n/", "/portal/index.html", "/portal/portal_test.go", "/portal/portal.go"} {
		if res, _ := http.Get(srv.URL + p); res.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
	}
}

// TestNoInlineScriptOrStyle: the strict CSP would block them, so none may
// exist; and no asset comes from another origin.
func TestNoInlineScriptOrStyle(t *testing.T) {
	page, _ := fs.ReadFile(files, "index.html")
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "javascript:", "http://", "https://"} {
		if strings.Contains(string(page), bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	if n := strings.Count(string(page), "<script"); n != 1 || !strings.Contains(string(page), `<script type="module" src="/portal/portal.js"></script>`) {
		t.Errorf("index.html: %d script tags, want only the module entry", n)
	}
	scripts, _ := fs.Glob(files, "*.js")
	for _, name := range scripts {
		b, _ := fs.ReadFile(files, name)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "Authorization"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
		for _, m := range regexp.MustCompile(`(?:from|import\() *"([^"]+)"`).FindAllStringSubmatch(string(b), -1) {
			if !strings.HasPrefix(m[1], "./") {
				t.Errorf("%s imports %q: only the portal's own modules", name, m[1])
			}
		}
	}
}

// TestCatalogueCoversEverything: one catalogue, both languages, for every
// key the page uses, every value of every vocabulary, every kind, park
// status and error code.
func TestCatalogueCoversEverything(t *testing.T) {
	raw, err := fs.ReadFile(files, "i18n/messages.json")
	if err != nil {
		t.Fatal(err)
	}
	var cat map[string]map[string]string
	if err := json.Unmarshal(raw, &cat); err != nil {
		t.Fatalf("messages.json: %v", err)
	}
	for k, m := range cat {
		if len(m) != 2 || strings.TrimSpace(m["zh"]) == "" || strings.TrimSpace(m["en"]) == "" {
			t.Errorf("%s: %v, want exactly zh and en, neither empty", k, m)
		}
	}
	var want []string
	add := func(prefix string, values ...string) {
		for _, v := range values {
			want = append(want, prefix+"."+v)
		}
	}
	add("sector", listing.Sectors...)
	add("need", listing.Needs...)
	add("org_type", listing.OrgTypes...)
	add("size", listing.OrgSizes...)
	add("stage", listing.Stages...)
	add("availability", listing.Availabilities...)
	add("currency", listing.Currencies...)
	for _, k := range listing.Kinds {
		add("kind", string(k))
	}
	add("visibility", string(listing.Private), string(listing.Club), string(listing.Peers))
	add("status", "live", "stale", "syncing", "ok", "timeout", "circuit_open", "unauthorized", "error")
	add("health", "ok", "degraded", "unavailable", "unknown")
	add("role", "viewer", "editor", "admin")
	add("event", "created", "updated", "withdrawn")
	// Every status an interest has, and every step its audit trail names
	// (read from gateway/interests, where the entries are written).
	for _, st := range interests.Statuses {
		add("interest.status", string(st))
	}
	for _, name := range []string{"service.go", "deliver.go"} {
		src, err := os.ReadFile("../interests/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`audit\("([a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			add("interest.audit", m[1])
		}
	}
	add("interest.audit", "accepted", "declined") // audit(string(in.Status), …)
	add("interest.box", interests.BoxSent, interests.BoxReceived)
	add("interest.box1", interests.BoxSent, interests.BoxReceived)
	add("interest.back", interests.BoxSent, interests.BoxReceived)
	add("interest.none", interests.BoxSent, interests.BoxReceived)
	// Every error code the API has (read from its one table), and those of
	// the session endpoints and the browser itself.
	src, err := os.ReadFile("../../pkg/apierror/apierror.go")
	if err != nil {
		t.Fatal(err)
	}
	codes := regexp.MustCompile(`Code = "([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(codes) < 10 {
		t.Fatalf("found %d error codes in pkg/apierror", len(codes))
	}
	for _, c := range codes {
		add("error", c[1])
	}
	add("error", "unauthenticated", "csrf", "network")

	// Keys named literally in the scripts and the page, and every field
	// the edit form draws (the API's errors point at them).
	scripts, _ := fs.Glob(files, "*.js")
	for _, name := range scripts {
		b, _ := fs.ReadFile(files, name)
		for _, m := range regexp.MustCompile(`\bt\("([A-Za-z0-9_.-]*[A-Za-z0-9_-])"`).FindAllStringSubmatch(string(b), -1) {
			want = append(want, m[1])
		}
		for _, m := range regexp.MustCompile(`path: "([A-Za-z0-9_.]+)"`).FindAllStringSubmatch(string(b), -1) {
			want = append(want, "field."+m[1])
		}
		for _, m := range regexp.MustCompile(`"((?:members|interest)\.[a-z_.]*[a-z_])"`).FindAllStringSubmatch(string(b), -1) {
			want = append(want, m[1])
		}
	}
	page, _ := fs.ReadFile(files, "index.html")
	for _, m := range regexp.MustCompile(`data-i18n(?:-label|-placeholder)?="([^"]+)"`).FindAllStringSubmatch(string(page), -1) {
		want = append(want, m[1])
	}
	for _, k := range want {
		if _, ok := cat[k]; !ok {
			t.Errorf("messages.json lacks %q", k)
		}
	}
}
