package session

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// OIDCConfig is how the gateway signs people in through the park's
// OpenID Connect provider.
type OIDCConfig struct {
	// Name is what the portal's button says.
	Name   string
	Issuer string
	// ClientID and ClientSecret identify the gateway at the provider (the
	// secret is read from a file by the caller, never a flag value).
	ClientID, ClientSecret string
	// RedirectURL is the park side's /auth/oidc/callback as the browser
	// reaches it (registered at the provider).
	RedirectURL string
	// Scopes asked besides openid (default profile, email).
	Scopes []string
	// RoleClaim names the ID token claim (a string or an array of
	// strings) mapped to a role by RoleMap; the highest role mapped wins.
	// DefaultRole is given when nothing maps ("" refuses the sign-in).
	RoleClaim   string
	RoleMap     map[string]parktoken.Role
	DefaultRole parktoken.Role
	// HTTPClient calls the provider (discovery, token, keys).
	HTTPClient *http.Client
}

// OIDC signs park staff in with authorization code + PKCE, state and
// nonce. Accounts are provisioned on first sign-in, linked to the
// provider's (issuer, sub), and their role follows the provider's claim at
// every sign-in; an account disabled here stays refused whatever the
// provider says.
type OIDC struct {
	cfg      OIDCConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// NewOIDC discovers the provider at cfg.Issuer.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OpenID Connect discovery at %s: %w", cfg.Issuer, err)
	}
	scopes := append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	if len(cfg.Scopes) == 0 {
		scopes = append(scopes, "profile", "email")
	}
	if cfg.Name == "" {
		cfg.Name = "OpenID Connect"
	}
	return &OIDC{cfg: cfg,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.RedirectURL, Scopes: scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
	}, nil
}

// Name is what the portal's button says.
func (o *OIDC) Name() string { return o.cfg.Name }

// oidcInfo answers GET /api/v1/auth/oidc: whether the portal offers the
// provider's sign-in, and under which name.
func (m *Manager) oidcInfo(w http.ResponseWriter, _ *http.Request) {
	if m.OIDC == nil {
		httpjson.Write(w, http.StatusOK, map[string]any{"enabled": false, "name": ""})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"enabled": true, "name": m.OIDC.Name()})
}

// flowCookie holds one sign-in's state, nonce, PKCE verifier and where to
// return, between the login redirect and the callback. It is HttpOnly,
// scoped to /auth/oidc/ and SameSite=Lax: the callback is a top-level
// navigation coming from the provider, which a Strict cookie would miss.
const flowCookie = "parkmesh_oidc"

type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Return   string `json:"r"`
	Expires  int64  `json:"e"`
}

// safeReturn keeps return_to only when it is a path of this origin
// ("/…", not "//host" or "/\\host"); anything else returns to "/".
func safeReturn(s string) string {
	if s == "" || len(s) > 1024 || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	return s
}

// oidcLogin answers GET /auth/oidc/login?return_to=/path: 302 to the
// provider's authorization endpoint.
func (m *Manager) oidcLogin(w http.ResponseWriter, r *http.Request) {
	var f flow
	var err error
	if f.State, err = randomString(24); err == nil {
		f.Nonce, err = randomString(24)
	}
	if err != nil {
		apierror.Write(w, err)
		return
	}
	f.Verifier = oauth2.GenerateVerifier()
	f.Return = safeReturn(r.URL.Query().Get("return_to"))
	f.Expires = m.now().Add(10 * time.Minute).Unix()
	b, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/auth/oidc/",
		MaxAge: 600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: m.SecureCookie || r.TLS != nil})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, m.OIDC.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

var errOIDCFlow = apierror.New(apierror.Unauthenticated, "the sign-in with the park's identity provider did not complete: start again")

// oidcCallback answers GET /auth/oidc/callback: the code is exchanged
// (with the PKCE verifier), the ID token verified (issuer, audience,
// expiry, signature, nonce), the account found or provisioned and its role
// taken from the claim; the session cookie is set and the browser sent to
// return_to.
func (m *Manager) oidcCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ck, err := r.Cookie(flowCookie)
	var f flow
	if err == nil {
		var b []byte
		if b, err = base64.RawURLEncoding.DecodeString(ck.Value); err == nil {
			err = json.Unmarshal(b, &f)
		}
	}
	// The flow is single-use whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	switch {
	case err != nil || f.State == "" || m.now().Unix() > f.Expires:
		m.Logger.WarnContext(ctx, "OIDC callback refused", "reason", "no or expired flow cookie")
		refuseOIDC(w, r, errOIDCFlow)
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1:
		m.Logger.WarnContext(ctx, "OIDC callback refused", "reason", "state mismatch")
		refuseOIDC(w, r, errOIDCFlow)
		return
	case q.Get("error") != "":
		m.Logger.WarnContext(ctx, "OIDC provider refused the sign-in", "error", httpjson.Clip(q.Get("error")))
		refuseOIDC(w, r, apierror.New(apierror.Unauthenticated, "the park's identity provider refused the sign-in"))
		return
	case q.Get("code") == "":
		refuseOIDC(w, r, apierror.InvalidField("code", "is required"))
		return
	}
	if m.OIDC.cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, m.OIDC.cfg.HTTPClient)
	}
	tok, err := m.OIDC.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		m.Logger.WarnContext(ctx, "OIDC code exchange failed", "err", err)
		refuseOIDC(w, r, errOIDCFlow)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := m.OIDC.verifier.Verify(ctx, raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		err = errors.New("nonce mismatch")
	}
	if err != nil {
		m.Logger.WarnContext(ctx, "OIDC ID token refused", "err", err)
		refuseOIDC(w, r, errOIDCFlow)
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		refuseOIDC(w, r, errOIDCFlow)
		return
	}
	u, err := m.oidcUser(ctx, idt.Issuer+" "+idt.Subject, claims)
	if err != nil {
		m.Logger.WarnContext(ctx, "OIDC sign-in refused", "code", apierror.CodeOf(err), "sub", httpjson.Clip(idt.Subject))
		refuseOIDC(w, r, err)
		return
	}
	if _, err := m.start(ctx, w, r, u, "oidc"); err != nil {
		refuseOIDC(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, f.Return, http.StatusFound)
}

// Role maps the role claim's value(s) to the highest role they grant.
func (o *OIDC) Role(claims map[string]any) (parktoken.Role, bool) {
	var values []string
	switch v := claims[o.cfg.RoleClaim].(type) {
	case string:
		values = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				values = append(values, s)
			}
		}
	}
	var best parktoken.Role
	for _, v := range values {
		if r, ok := o.cfg.RoleMap[v]; ok && (best == "" || r.Allows(best)) {
			best = r
		}
	}
	if best == "" {
		best = o.cfg.DefaultRole
	}
	return best, best != ""
}

// oidcUser finds the account linked to subject, or provisions one; its
// role follows the claim.
func (m *Manager) oidcUser(ctx context.Context, subject string, claims map[string]any) (state.User, error) {
	role, ok := m.OIDC.Role(claims)
	if !ok {
		return state.User{}, apierror.New(apierror.Forbidden, "your account at the park's identity provider grants no ParkMesh role; ask the park's administrator")
	}
	u, err := m.State.UserByOIDCSubject(ctx, subject)
	switch {
	case err == nil:
		if u.Disabled {
			return u, apierror.New(apierror.Forbidden, "this account is disabled; ask the park's administrator")
		}
		if u.Role != string(role) {
			if _, err := m.Accounts.SetRole(ctx, u.Username, string(role)); err != nil {
				return u, err
			}
			u.Role = string(role)
		}
		return u, nil
	case !errors.Is(err, state.ErrNotFound):
		return u, err
	}
	display, _ := claims["name"].(string)
	if accounts.ValidateDisplayName(display) != nil {
		display = ""
	}
	n := accounts.NewUser{DisplayName: display, Role: string(role), OIDCSubject: subject}
	// The provider's preferred username when it is a valid one and free,
	// else one made from the subject.
	h := sha256.Sum256([]byte(subject))
	candidates := []string{}
	for _, c := range []string{"preferred_username", "email"} {
		if s, _ := claims[c].(string); accounts.ValidateUsername("", strings.ToLower(s)) == nil {
			candidates = append(candidates, strings.ToLower(s))
		}
	}
	candidates = append(candidates, "oidc-"+hex.EncodeToString(h[:6]))
	for _, c := range candidates {
		n.Username = c
		if n.DisplayName == "" {
			n.DisplayName = c
		}
		if _, err := m.Accounts.Add(ctx, n); err != nil {
			if apierror.Is(err, apierror.Conflict) {
				continue
			}
			return state.User{}, err
		}
		m.Logger.InfoContext(ctx, "account provisioned from the park's identity provider", "user", c, "role", role)
		return m.State.User(ctx, c)
	}
	return state.User{}, apierror.New(apierror.Conflict, "no free username for this identity")
}

// refuseOIDC answers a callback that cannot sign the person in. A browser
// (the provider sends people here) goes back to the portal's sign-in page
// with the refusal's code, which the portal says in the person's
// language; any other client gets the JSON error.
func refuseOIDC(w http.ResponseWriter, r *http.Request, err error) {
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		apierror.Write(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/#/signin?oidc_error="+url.QueryEscape(string(apierror.CodeOf(err))), http.StatusSeeOther)
}
