package session_test

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/deploy/testenv/oidctest"
	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/session"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

func TestOIDCSignInWithPKCEAndRoleFromClaim(t *testing.T) {
	db, err := state.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a := accounts.New(db)
	// The gateway's park side, on a loopback port known before the
	// provider starts (the redirect URI is registered there).
	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw := "http://" + gwLn.Addr().String()
	// A real OpenID provider (zitadel's op package, with its example login
	// page) knowing the gateway as a web client; the park's directory says
	// who edits.
	issuer := oidctest.Start(t, oidctest.Options{ClientID: "parkmesh-gateway", ClientSecret: "client-secret-from-a-file",
		RedirectURI: gw + "/auth/oidc/callback", Groups: map[string][]string{
			"id1": {"staff", "parkmesh-editors"}, // test-user@127.0.0.1
			"id2": {"visitors"},                  // test-user2: no role
		}}).Issuer
	o, err := session.NewOIDC(t.Context(), session.OIDCConfig{
		Name: "Park SSO", Issuer: issuer, ClientID: "parkmesh-gateway", ClientSecret: "client-secret-from-a-file",
		RedirectURL: gw + "/auth/oidc/callback", Scopes: []string{"profile", "email", oidctest.Scope},
		RoleClaim: "groups", RoleMap: map[string]parktoken.Role{"staff": parktoken.Viewer, "parkmesh-editors": parktoken.Editor},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &session.Manager{Park: "xian-hitech", State: db, Accounts: a, Logger: slog.New(slog.DiscardHandler), OIDC: o}
	mux := http.NewServeMux()
	m.Routes(mux, func(_ string, h http.Handler) http.Handler { return h })
	srv := &httptest.Server{Listener: gwLn, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)

	jar, _ := cookiejar.New(nil)
	var visited []string
	browser := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		visited = append(visited, r.URL.String())
		return nil
	}}
	b := &browser_{t: t, c: browser, base: gw}
	if _, body := b.do("GET", "/api/v1/auth/oidc", "", false); body["enabled"] != true || body["name"] != "Park SSO" {
		t.Errorf("auth/oidc = %v", body)
	}

	// Sign in as the provider's test-user: the gateway sends the browser
	// to the provider, which shows its login form.
	res, err := browser.Get(gw + "/auth/oidc/login?return_to=" + url.QueryEscape("/portal/#/listings?x=1"))
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(res)
	if len(visited) == 0 || !strings.HasPrefix(visited[0], issuer+"/auth?") {
		t.Fatalf("redirected to %v, want the provider's authorize endpoint", visited)
	}
	authz, _ := url.Parse(visited[0])
	q := authz.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("response_type") != "code" {
		t.Errorf("authorize request lacks PKCE S256, state or nonce: %v", q)
	}
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(page)
	if id == nil {
		t.Fatalf("no login form from the provider: %s", page)
	}
	// A forged callback (wrong state) is refused before any code exchange.
	if res, body := b.do("GET", "/auth/oidc/callback?state=forged&code=x", "", false); res.StatusCode != 401 || errCode(body) != "unauthenticated" {
		t.Errorf("forged callback = %d %v", res.StatusCode, body)
	}
	// That spent the flow cookie: start again.
	visited = nil
	res, _ = browser.Get(gw + "/auth/oidc/login?return_to=" + url.QueryEscape("/portal/#/listings?x=1"))
	id = regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(readAll(res))
	visited = nil
	res, err = browser.PostForm(issuer+"/login/username", url.Values{"id": {id[1]}, "username": {"test-user@127.0.0.1"}, "password": {oidctest.Password}})
	if err != nil {
		t.Fatal(err)
	}
	last := readAll(res)
	// provider → gateway callback → return_to.
	if len(visited) < 2 || !strings.HasPrefix(visited[len(visited)-2], gw+"/auth/oidc/callback?") || visited[len(visited)-1] != gw+"/portal/#/listings?x=1" {
		t.Fatalf("redirects after login: %v; last answer %d %s", visited, res.StatusCode, last)
	}
	// Signed in, provisioned, with the role the claim maps to (the highest
	// of staff → viewer and parkmesh-editors → editor).
	res2, body := b.do("GET", "/api/v1/session", "", false)
	user, _ := body["user"].(map[string]any)
	if res2.StatusCode != 200 || user["username"] != "sso.id1" || user["role"] != "editor" || user["display_name"] != "Test User id1" {
		t.Fatalf("session after OIDC sign-in = %d %v", res2.StatusCode, body)
	}
	u, err := db.User(t.Context(), "sso.id1")
	if err != nil || u.PasswordHash != "" || u.OIDCSubject != issuer+" id1" {
		t.Errorf("provisioned account = %+v, %v", u, err)
	}
	// The cookie works on the park API like a password session's.
	req := httptest.NewRequest("POST", "/api/v1/projects", nil)
	for _, c := range jar.Cookies(mustURL(gw)) {
		req.AddCookie(c)
	}
	req.Header.Set(session.CSRFHeader, b.csrf)
	if c, ok, err := m.Authenticate(req); !ok || err != nil || c.Role != parktoken.Editor || c.Subject != "sso.id1" {
		t.Errorf("Authenticate = %+v %v %v", c, ok, err)
	}

	// A person whose groups map to no role is refused, and no account is made.
	jar2, _ := cookiejar.New(nil)
	other := &http.Client{Jar: jar2}
	res, _ = other.Get(gw + "/auth/oidc/login")
	id = regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(readAll(res))
	res, err = other.PostForm(issuer+"/login/username", url.Values{"id": {id[1]}, "username": {"test-user2"}, "password": {oidctest.Password}})
	if err != nil {
		t.Fatal(err)
	}
	if readAll(res); res.StatusCode != 403 {
		t.Errorf("sign-in without a mapped role = %d, want 403", res.StatusCode)
	}
	if us, _ := db.Users(t.Context()); len(us) != 1 {
		t.Errorf("accounts = %+v, want only the first", us)
	}
}

func TestSafeReturnTo(t *testing.T) {
	for in, want := range map[string]string{
		"/portal/#/x":           "/portal/#/x",
		"":                      "/",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"portal":                "/",
		"/ok?a=1":               "/ok?a=1",
		"/\r\nSet-Cookie:x":     "/",
	} {
		if got := session.SafeReturn(in); got != want {
			t.Errorf("SafeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

type browser_ = browser

func readAll(res *http.Response) string {
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}
