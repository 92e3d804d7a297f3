package browsertest

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/deploy/testenv/oidctest"
	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/state"
)

// waitAcross waits until expr is true on whatever page the tab shows,
// across navigations to other origins (a poll inside one page would end
// with its document).
func waitAcross(p *page, what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	p.fail("waiting for %s (last error %v)", what, last)
}

// TestPortalOIDCSignIn signs an officer in through the park's own OpenID
// Connect provider in a real Chromium: a real provider (zitadel's op with
// its login page) on loopback, a park whose gateway runs with the -oidc-…
// flags, the portal's "sign in with …" button, the provider's login form
// filled in, and the portal signed in with the role the groups claim maps
// to. Then, with a password account of the same park: a session ended on
// the node sends the officer back to sign-in with a message; and a
// state-changing call without the CSRF token is refused while the same
// call with it passes.
func TestPortalOIDCSignIn(t *testing.T) {
	browser := startBrowser(t)
	// Browsers reach the park side through a reverse proxy, as in most
	// parks: its address is the park's public URL, known before the
	// gateway starts, so it can be registered at the provider and given
	// to the gateway as the redirect URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := "http://" + ln.Addr().String()
	prov := oidctest.Start(t, oidctest.Options{ClientID: "parkmesh-chengdu", ClientSecret: "a-secret-kept-in-a-file",
		RedirectURI: front + "/auth/oidc/callback", Groups: map[string][]string{
			"id1": {"staff", "parkmesh-editors"},
			"id2": {"visitors"},
		}})
	secret := filepath.Join(t.TempDir(), "oidc-client-secret")
	if err := os.WriteFile(secret, []byte("a-secret-kept-in-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := nodetest.StartParkWith(t, chengdu.id, nodetest.Options{GatewayArgs: []string{
		"-park-name-zh", chengdu.zh, "-park-name-en", chengdu.en, "-park-country", chengdu.country,
		"-oidc-issuer", prov.Issuer, "-oidc-client-id", "parkmesh-chengdu", "-oidc-client-secret-file", secret,
		"-oidc-redirect-url", front + "/auth/oidc/callback", "-oidc-name", "成都高新区统一身份认证",
		"-oidc-scopes", "profile,email," + oidctest.Scope, "-oidc-role-claim", "groups",
		"-oidc-role-map", "staff=viewer,parkmesh-editors=editor"}})
	target, _ := url.Parse(a.GatewayURL)
	srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addUser(t, a, "li.wei", "李伟", "editor", "zh", password)

	t.Run("sign in with the park's provider", func(t *testing.T) {
		p := newPage(t, browser, "Chengdu officer (SSO)", front)
		p.open("/")
		p.waitText("#oidc-login", "使用 成都高新区统一身份认证 登录")
		p.screenshot("signin-oidc")
		p.click("#oidc-login")
		// The provider's own login page, at the provider.
		waitAcross(p, "the provider's login form", `!!document.querySelector('form[action="/login/username"] #username')`)
		var at string
		p.eval(`location.origin`, &at)
		if at != prov.Issuer {
			t.Errorf("the login form is at %s, want the provider %s", at, prov.Issuer)
		}
		p.set("#username", prov.Username("id1"))
		p.set("#password", oidctest.Password)
		p.click(`form[action="/login/username"] button[type="submit"]`)
		// Back at the portal, signed in with the role the claim maps to
		// (the highest of staff → viewer and parkmesh-editors → editor).
		waitAcross(p, "the portal signed in", `document.querySelector("#signed-in-as")?.textContent === "已登录：Test User id1（编辑者）"`)
		p.eval(`location.origin`, &at)
		if at != front {
			t.Errorf("after sign-in the browser is at %s, want the portal %s", at, front)
		}
		if !p.visible("#nav-new") {
			t.Error("an editor signed in through the provider is not offered to create listings")
		}
		p.screenshot("signin-oidc-done")
		// The account was made on first sign-in, without a password.
		db, err := state.Open(t.Context(), a.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		u, err := accounts.New(db).Get(t.Context(), "sso.id1")
		if err != nil || u.Role != "editor" {
			t.Errorf("provisioned account: %+v, %v", u, err)
		}
	})

	t.Run("a person the claim maps to no role is refused", func(t *testing.T) {
		p := newPage(t, browser, "a visitor (SSO)", front)
		p.open("/")
		p.click("#oidc-login")
		waitAcross(p, "the provider's login form", `!!document.querySelector('form[action="/login/username"] #username')`)
		p.set("#username", prov.Username("id2"))
		p.set("#password", oidctest.Password)
		p.click(`form[action="/login/username"] button[type="submit"]`)
		waitAcross(p, "the refusal", `location.pathname.startsWith("/auth/oidc/callback") && document.body.innerText.includes("forbidden")`)
		p.open("/")
		p.wait("the sign-in form", `!!document.querySelector("#signin")`)
		if p.count("#signed-in-as") != 0 {
			t.Error("signed in without a mapped role")
		}
	})

	t.Run("an ended session goes back to sign-in with a message", func(t *testing.T) {
		p := newPage(t, browser, "Chengdu officer", front)
		p.open("/")
		signIn(p, "li.wei", password)
		p.waitText("#signed-in-as", "李伟")
		p.route("#/members")
		p.wait("the members page", `!!document.querySelector("#members")`)
		// The administrator resets the password on the node (parkmesh
		// user reset-password): every session of the account ends.
		db, err := state.Open(t.Context(), a.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = accounts.New(db).ResetPassword(t.Context(), "li.wei", password+" again")
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The officer's next step meets the ended session.
		p.route("#/search?scope=local&q=x")
		p.wait("the sign-in form", `!!document.querySelector("#signin")`)
		p.waitText("#flash", "会话已过期，请重新登录。")
		if p.count("#signed-in-as") != 0 || !p.visible("#signin-submit") {
			t.Error("still shown as signed in after the session ended")
		}
		p.screenshot("session-ended")
		signIn(p, "li.wei", password+" again")
		p.waitText("#signed-in-as", "李伟")
	})

	t.Run("a state-changing call without the CSRF token is refused", func(t *testing.T) {
		p := newPage(t, browser, "Chengdu officer, scripted", front)
		p.open("/")
		signIn(p, "li.wei", password+" again")
		p.waitText("#signed-in-as", "李伟")
		var got struct {
			Without, With int
			Code          string
		}
		p.eval(`(async () => {
			const body = JSON.stringify({kind: "project", title: "CSRF probe 跨站探测", sectors: ["other"], country: "CN", visibility: "club", attrs: {stage: "idea"}});
			const r1 = await fetch("/api/v1/projects", {method: "POST", headers: {"Content-Type": "application/json"}, body});
			const e = await r1.json().catch(() => ({}));
			const s = await (await fetch("/api/v1/session")).json();
			const r2 = await fetch("/api/v1/projects", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf_token}, body});
			return {without: r1.status, code: (e.error || {}).code || "", with: r2.status};
		})()`, &got)
		if got.Without != http.StatusForbidden || got.Code != "csrf" {
			t.Errorf("without the CSRF token: %d %q, want 403 csrf", got.Without, got.Code)
		}
		if got.With != http.StatusCreated {
			t.Errorf("with the CSRF token: %d, want 201", got.With)
		}
		// Exactly one listing was made: the refused call changed nothing.
		status, body := a.Do(context.Background(), "GET", "/api/v1/search?scope=local&q="+url.QueryEscape("CSRF probe"), a.Token("viewer"), nil)
		if n := strings.Count(string(body), `"CSRF probe 跨站探测"`); status != 200 || n != 1 {
			t.Errorf("listings made: %d (search %d %s)", n, status, body)
		}
	})
}
