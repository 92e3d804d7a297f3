package session_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/session"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// clock is a settable clock for the expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	srv   *httptest.Server
	clock *clock
	accts *accounts.Accounts
	mgr   *session.Manager
}

// newFixture serves the session endpoints and one protected endpoint
// (/api/v1/probe, any method: answers the principal) over real HTTP, with
// a real state file.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := state.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	a := accounts.New(db)
	a.Hash = accounts.HashParams{Memory: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	a.Now = clk.Now
	m := &session.Manager{Park: "xian-hitech", State: db, Accounts: a, Logger: slog.New(slog.DiscardHandler),
		Idle: 30 * time.Minute, Absolute: 12 * time.Hour, Now: clk.Now}
	mux := http.NewServeMux()
	m.Routes(mux, func(_ string, h http.Handler) http.Handler { return h })
	mux.HandleFunc("/api/v1/probe", func(w http.ResponseWriter, r *http.Request) {
		c, ok, err := m.Authenticate(r)
		if !ok {
			err = apierror.New(apierror.Unauthorized, "no cookie")
		}
		if err != nil {
			apierror.Write(w, err)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"sub": c.Subject, "role": string(c.Role)})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, u := range []accounts.NewUser{
		{Username: "li.wei", DisplayName: "李伟", Role: "editor", Password: "correct horse battery"},
		{Username: "zhao", Role: "viewer", Password: "another good password", Lang: "en"},
	} {
		if _, err := a.Add(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{srv: srv, clock: clk, accts: a, mgr: m}
}

type browser struct {
	t    *testing.T
	c    *http.Client
	base string
	csrf string
}

func (f *fixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar}, base: f.srv.URL}
}

// do sends a request; csrf adds the X-CSRF-Token header.
func (b *browser) do(method, path, body string, csrf bool) (*http.Response, map[string]any) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf {
		req.Header.Set(session.CSRFHeader, b.csrf)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if tok, ok := out["csrf_token"].(string); ok {
		b.csrf = tok
	}
	return resp, out
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (b *browser) signIn(user, pw string) (*http.Response, map[string]any) {
	b.t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	return b.do("POST", "/api/v1/session", string(body), false)
}

func TestPasswordSignInSessionAndLogout(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	resp, body := b.signIn("li.wei", "correct horse battery")
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in = %d %v", resp.StatusCode, body)
	}
	user, _ := body["user"].(map[string]any)
	if user["username"] != "li.wei" || user["display_name"] != "李伟" || user["role"] != "editor" || user["lang"] != "zh" {
		t.Errorf("user = %v", user)
	}
	if body["csrf_token"] == "" || body["expires_at"] == nil || body["idle_expires_at"] == nil {
		t.Errorf("body = %v", body)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == session.CookieName {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure {
		t.Fatalf("cookie = %+v", ck)
	}
	if strings.Contains(string(mustJSON(body)), ck.Value) {
		t.Error("the session id appears in the body")
	}

	// The cookie stands for the account's role, on a safe method without
	// CSRF token.
	if resp, body := b.do("GET", "/api/v1/probe", "", false); resp.StatusCode != 200 || body["sub"] != "li.wei" || body["role"] != "editor" {
		t.Errorf("probe = %d %v", resp.StatusCode, body)
	}
	// A state-changing request needs the token: none, wrong, then right.
	first := b.csrf
	if resp, body := b.do("POST", "/api/v1/probe", "", false); resp.StatusCode != 403 || errCode(body) != "csrf" {
		t.Errorf("POST without token = %d %v", resp.StatusCode, body)
	}
	b.csrf = "AAAAAAAAAAAAAAAAAAAAAA.bm90LWEtbWFj"
	if resp, body := b.do("POST", "/api/v1/probe", "", true); resp.StatusCode != 403 || errCode(body) != "csrf" {
		t.Errorf("POST with a forged token = %d %v", resp.StatusCode, body)
	}
	// GET /api/v1/session gives a fresh token; the first stays valid.
	if resp, _ := b.do("GET", "/api/v1/session", "", false); resp.StatusCode != 200 || b.csrf == first {
		t.Errorf("GET session = %d, token fresh: %v", resp.StatusCode, b.csrf != first)
	}
	if resp, _ := b.do("POST", "/api/v1/probe", "", true); resp.StatusCode != 200 {
		t.Errorf("POST with the fresh token = %d", resp.StatusCode)
	}
	b.csrf = first
	if resp, _ := b.do("DELETE", "/api/v1/probe", "", true); resp.StatusCode != 200 {
		t.Errorf("DELETE with the first token = %d", resp.StatusCode)
	}
	// Another person's token does not pass for this session.
	other := f.browser(t)
	other.signIn("zhao", "another good password")
	b.csrf = other.csrf
	if resp, _ := b.do("POST", "/api/v1/probe", "", true); resp.StatusCode != 403 {
		t.Errorf("POST with another session's token = %d", resp.StatusCode)
	}

	// Language: kept per user, CSRF needed, checked.
	b.do("GET", "/api/v1/session", "", false)
	if resp, body := b.do("PUT", "/api/v1/session/lang", `{"lang":"en"}`, false); resp.StatusCode != 403 || errCode(body) != "csrf" {
		t.Errorf("lang without token = %d", resp.StatusCode)
	}
	if resp, body := b.do("PUT", "/api/v1/session/lang", `{"lang":"fr"}`, true); resp.StatusCode != 400 || body["error"].(map[string]any)["field"] != "lang" {
		t.Errorf("lang fr = %d %v", resp.StatusCode, body)
	}
	if resp, _ := b.do("PUT", "/api/v1/session/lang", `{"lang":"en"}`, true); resp.StatusCode != 204 {
		t.Errorf("lang en = %d", resp.StatusCode)
	}
	if _, body := b.do("GET", "/api/v1/session", "", false); body["user"].(map[string]any)["lang"] != "en" {
		t.Errorf("lang after PUT = %v", body["user"])
	}

	// Logout: needs the token, deletes the session, clears the cookie.
	cookie := b.c.Jar.Cookies(mustURL(f.srv.URL))[0]
	if resp, _ := b.do("DELETE", "/api/v1/session", "", false); resp.StatusCode != 403 {
		t.Errorf("logout without token = %d", resp.StatusCode)
	}
	resp, _ = b.do("DELETE", "/api/v1/session", "", true)
	if resp.StatusCode != 204 {
		t.Fatalf("logout = %d", resp.StatusCode)
	}
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || c.Name == session.CookieName && c.MaxAge < 0
	}
	if !cleared {
		t.Error("logout did not clear the cookie")
	}
	// The old cookie, replayed, is dead.
	replay := f.browser(t)
	replay.c.Jar.SetCookies(mustURL(f.srv.URL), []*http.Cookie{cookie})
	if resp, body := replay.do("GET", "/api/v1/session", "", false); resp.StatusCode != 401 || errCode(body) != "unauthenticated" {
		t.Errorf("replayed cookie after logout = %d %v", resp.StatusCode, body)
	}
}

func TestWrongPasswordThrottlingAndDisabled(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	_, unknown := b.signIn("nobody", "whatever password")
	resp, wrong := b.signIn("li.wei", "not the password")
	if resp.StatusCode != 401 || errCode(wrong) != "unauthenticated" {
		t.Fatalf("wrong password = %d %v", resp.StatusCode, wrong)
	}
	if mustJSON(unknown) != mustJSON(wrong) {
		t.Errorf("unknown user %v and wrong password %v answer differently", unknown, wrong)
	}
	if resp, body := b.signIn("", "x"); resp.StatusCode != 400 || body["error"].(map[string]any)["field"] != "username" {
		t.Errorf("empty username = %d %v", resp.StatusCode, body)
	}
	if resp, body := b.do("POST", "/api/v1/session", `{"username":"li.wei","password":"x","extra":1}`, false); resp.StatusCode != 400 || body["error"].(map[string]any)["field"] != "extra" {
		t.Errorf("unknown field = %d %v", resp.StatusCode, body)
	}
	// Per account: the 5th failure in the window locks it, even for the
	// right password, with Retry-After.
	for range 3 {
		b.signIn("li.wei", "not the password")
	}
	resp, body := b.signIn("li.wei", "not the password")
	if resp.StatusCode != 429 || errCode(body) != "too_many_requests" || resp.Header.Get("Retry-After") != "300" {
		t.Fatalf("5th failure = %d %v Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if resp, _ := b.signIn("li.wei", "correct horse battery"); resp.StatusCode != 429 {
		t.Errorf("right password while locked = %d", resp.StatusCode)
	}
	// Another account from the same address is not locked (yet).
	if resp, _ := b.signIn("zhao", "another good password"); resp.StatusCode != 200 {
		t.Errorf("other account = %d", resp.StatusCode)
	}
	f.clock.Add(5*time.Minute + time.Second)
	if resp, _ := b.signIn("li.wei", "correct horse battery"); resp.StatusCode != 200 {
		t.Errorf("after the lockout = %d", resp.StatusCode)
	}
	// Per address: 20 failures across accounts lock the address.
	f.clock.Add(time.Hour)
	for i := range 19 {
		if resp, _ := b.signIn("user"+string(rune('a'+i)), "guessing here"); resp.StatusCode != 401 {
			t.Fatalf("failure %d = %d", i, resp.StatusCode)
		}
	}
	if resp, _ := b.signIn("zhao", "guessing here"); resp.StatusCode != 429 {
		t.Errorf("20th failure from the address = %d", resp.StatusCode)
	}
	if resp, _ := b.signIn("zhao", "another good password"); resp.StatusCode != 429 {
		t.Errorf("right password from a locked address = %d", resp.StatusCode)
	}

	// Disabled: 403 for the right password, and its sessions end.
	f.clock.Add(time.Hour)
	s := f.browser(t)
	if resp, _ := s.signIn("zhao", "another good password"); resp.StatusCode != 200 {
		t.Fatalf("sign-in = %d", resp.StatusCode)
	}
	if _, err := f.accts.SetDisabled(t.Context(), "zhao", true); err != nil {
		t.Fatal(err)
	}
	if resp, _ := s.do("GET", "/api/v1/probe", "", false); resp.StatusCode != 401 {
		t.Errorf("session of a disabled account = %d", resp.StatusCode)
	}
	if resp, body := b.signIn("zhao", "another good password"); resp.StatusCode != 403 || errCode(body) != "forbidden" {
		t.Errorf("disabled sign-in = %d %v", resp.StatusCode, body)
	}
	if resp, _ := b.signIn("zhao", "wrong password!"); resp.StatusCode != 401 {
		t.Errorf("disabled, wrong password = %d (must not reveal the account)", resp.StatusCode)
	}
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	if resp, _ := b.signIn("li.wei", "correct horse battery"); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	// Used every 29 minutes, it lives on ...
	for range 4 {
		f.clock.Add(29 * time.Minute)
		if resp, _ := b.do("GET", "/api/v1/probe", "", false); resp.StatusCode != 200 {
			t.Fatalf("used within the idle time = %d", resp.StatusCode)
		}
	}
	// ... until 31 minutes without use.
	f.clock.Add(31 * time.Minute)
	if resp, body := b.do("GET", "/api/v1/session", "", false); resp.StatusCode != 401 || errCode(body) != "unauthenticated" {
		t.Errorf("idle 31m = %d %v", resp.StatusCode, body)
	}

	// Absolute: however busy, 12 hours after sign-in it ends.
	b = f.browser(t)
	_, body := b.signIn("li.wei", "correct horse battery")
	exp, _ := time.Parse(time.RFC3339, body["expires_at"].(string))
	if want := f.clock.Now().Add(12 * time.Hour); !exp.Equal(want) {
		t.Errorf("expires_at = %v, want %v", exp, want)
	}
	for range 24 {
		f.clock.Add(29*time.Minute + 30*time.Second)
		if resp, _ := b.do("GET", "/api/v1/probe", "", false); resp.StatusCode != 200 {
			t.Fatalf("busy session refused at %v", f.clock.Now())
		}
	}
	f.clock.Add(12 * time.Minute) // 12h past sign-in
	if resp, _ := b.do("GET", "/api/v1/probe", "", false); resp.StatusCode != 401 {
		t.Errorf("past the absolute expiry = %d", resp.StatusCode)
	}
}

func TestCookieSecureOverTLS(t *testing.T) {
	f := newFixture(t)
	tls := httptest.NewTLSServer(f.srv.Config.Handler)
	defer tls.Close()
	c := tls.Client()
	resp, err := c.Post(tls.URL+"/api/v1/session", "application/json", strings.NewReader(`{"username":"li.wei","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("cookies over TLS = %+v, want Secure", cs)
	}
}

func TestAuthenticateWithoutCookie(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest("GET", "/api/v1/search", nil)
	if c, ok, err := f.mgr.Authenticate(req); ok || c != nil || err != nil {
		t.Errorf("no cookie = %v %v %v, want not ok", c, ok, err)
	}
	req.AddCookie(&http.Cookie{Name: session.CookieName, Value: "made-up"})
	if _, ok, err := f.mgr.Authenticate(req); !ok || !apierror.Is(err, apierror.Unauthenticated) {
		t.Errorf("made-up cookie = %v %v", ok, err)
	}
	_ = parktoken.Viewer
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }
