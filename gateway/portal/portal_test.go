package portal

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPortalServesPageAndAssetsWithCSP(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, c := range []struct{ path, ctype, want string }{
		{"/", "text/html", `<form id="search">`},
		{"/portal/portal.js", "text/javascript", `"/api/v1/search?"`},
		{"/portal/portal.css", "text/css", "main {"},
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
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", c.path, csp)
		}
	}
	// The page never puts the token in a URL.
	res, _ := http.Get(srv.URL + "/portal/portal.js")
	js, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(js), "token=") || !strings.Contains(string(js), `Authorization: "Bearer " + token()`) {
		t.Error("portal.js sends the token other than in an Authorization header")
	}
	if res, _ := http.Get(srv.URL + "/favicon.ico"); res.StatusCode != 204 {
		t.Errorf("favicon: %d", res.StatusCode)
	}
	if res, _ := http.Get(srv.URL + "/portal/secret.txt"); res.StatusCode != 404 {
		t.Errorf("unknown asset: %d", res.StatusCode)
	}
}
