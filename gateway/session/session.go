// Package session keeps the park staff's portal sessions: a random id in
// an HttpOnly, SameSite=Strict cookie (Secure when the park side is served
// over TLS), whose SHA-256 alone is stored in the gateway's state, with an
// idle and an absolute expiry; CSRF tokens for state-changing requests
// (derived from the session id, so any replica checks them); the sign-in
// endpoints (password, and optionally the park's OpenID Connect provider
// with authorization code + PKCE) and sign-out. A session resolves to the
// same principal a park-local token does (subject, role), so every park
// endpoint serves a signed-in person as it serves a token holder.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/httpjson"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// CookieName is the session cookie's name.
const CookieName = "parkmesh_session"

// CSRFHeader carries the CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

// Defaults of the expiries.
const (
	DefaultIdle     = 30 * time.Minute
	DefaultAbsolute = 12 * time.Hour
)

// Manager keeps the sessions.
type Manager struct {
	Park     string
	State    *state.DB
	Accounts *accounts.Accounts
	Logger   *slog.Logger
	// Idle ends a session unused this long; Absolute ends any session this
	// long after sign-in.
	Idle, Absolute time.Duration
	// SecureCookie sets Secure on the cookie even when the request did not
	// arrive over TLS (the park side behind a TLS-terminating proxy).
	SecureCookie bool
	// OIDC, when set, signs people in through the park's OpenID Connect
	// provider.
	OIDC *OIDC
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) idle() time.Duration {
	if m.Idle > 0 {
		return m.Idle
	}
	return DefaultIdle
}

func (m *Manager) absolute() time.Duration {
	if m.Absolute > 0 {
		return m.Absolute
	}
	return DefaultAbsolute
}

// touchEvery is how stale last_seen may get before a request writes it:
// a portal page makes many requests, and the idle expiry needs only rough
// precision.
func (m *Manager) touchEvery() time.Duration { return min(m.idle()/30, time.Minute) }

func hashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// csrfToken makes a fresh CSRF token for session id: a random nonce and
// its HMAC keyed by the session id. Only a holder of the id (the browser,
// which never shows it to scripts) or the server can make one; no token is
// stored, and every one made for the session stays valid with it.
func csrfToken(id string) string {
	nonce, _ := randomString(16)
	return nonce + "." + csrfMAC(id, nonce)
}

func csrfMAC(id, nonce string) string {
	mac := hmac.New(sha256.New, []byte(id))
	mac.Write([]byte("parkmesh csrf v1\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func validCSRF(id, token string) bool {
	nonce, sum, ok := strings.Cut(token, ".")
	if !ok || len(nonce) != 22 || len(sum) > 64 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(sum), []byte(csrfMAC(id, nonce))) == 1
}

// Info is the body of the session endpoints.
type Info struct {
	User          UserInfo  `json:"user"`
	CSRFToken     string    `json:"csrf_token"`
	ExpiresAt     time.Time `json:"expires_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
}

// UserInfo is who is signed in.
type UserInfo struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	Lang        string `json:"lang"`
}

// current is a valid session resolved from a request.
type current struct {
	id   string
	sess state.Session
	user state.User
}

func (m *Manager) info(c current) Info {
	idle := c.sess.LastSeen.Add(m.idle())
	if idle.After(c.sess.ExpiresAt) {
		idle = c.sess.ExpiresAt
	}
	return Info{
		User:      UserInfo{Username: c.user.Username, DisplayName: c.user.DisplayName, Role: c.user.Role, Lang: c.user.Lang},
		CSRFToken: csrfToken(c.id), ExpiresAt: c.sess.ExpiresAt, IdleExpiresAt: idle,
	}
}

// start records a new session for username and sets its cookie.
func (m *Manager) start(ctx context.Context, w http.ResponseWriter, r *http.Request, u state.User, method string) (current, error) {
	id, err := randomString(32)
	if err != nil {
		return current{}, err
	}
	now := m.now().UTC()
	s := state.Session{IDHash: hashID(id), Username: u.Username, Method: method, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(m.absolute())}
	if err := m.State.CreateSession(ctx, s); err != nil {
		return current{}, err
	}
	http.SetCookie(w, m.cookie(r, id, s.ExpiresAt))
	m.Logger.InfoContext(ctx, "signed in", "user", u.Username, "method", method, "session", s.IDHash[:12])
	return current{id: id, sess: s, user: u}, nil
}

func (m *Manager) cookie(r *http.Request, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: CookieName, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: m.SecureCookie || r.TLS != nil}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	return c
}

var errNoSession = apierror.New(apierror.Unauthenticated, "not signed in, or the session has expired: sign in again")

// resolve finds the valid session of r's cookie: ok is false when r
// carries no session cookie at all; errNoSession when the cookie names
// no live session (unknown, expired, or its account disabled).
func (m *Manager) resolve(r *http.Request) (c current, ok bool, err error) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return c, false, nil
	}
	if len(ck.Value) > 128 {
		return c, true, errNoSession
	}
	ctx := r.Context()
	s, u, err := m.State.Session(ctx, hashID(ck.Value))
	if errors.Is(err, state.ErrNotFound) {
		return c, true, errNoSession
	}
	if err != nil {
		return c, true, err
	}
	now := m.now()
	if !now.Before(s.ExpiresAt) || !now.Before(s.LastSeen.Add(m.idle())) || u.Disabled {
		_ = m.State.DeleteSession(ctx, s.IDHash)
		return c, true, errNoSession
	}
	if now.Sub(s.LastSeen) >= m.touchEvery() {
		if err := m.State.TouchSession(ctx, s.IDHash, now); err != nil {
			return c, true, err
		}
		s.LastSeen = now.UTC()
	}
	return current{id: ck.Value, sess: s, user: u}, true, nil
}

// safe reports whether method changes nothing (needs no CSRF token).
func safe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

var errCSRF = apierror.New(apierror.CSRF, "missing or invalid X-CSRF-Token header: fetch GET /api/v1/session for a token")

// Authenticate resolves r's session cookie to the principal it stands for,
// as a park-local token would: ok is false when r carries no session
// cookie (the caller then looks for a bearer token). A cookie with no
// live session is Unauthenticated; a state-changing method without a
// valid X-CSRF-Token is CSRF (403).
func (m *Manager) Authenticate(r *http.Request) (claims *parktoken.Claims, ok bool, err error) {
	c, ok, err := m.resolve(r)
	if !ok || err != nil {
		return nil, ok, err
	}
	if !safe(r.Method) && !validCSRF(c.id, r.Header.Get(CSRFHeader)) {
		return nil, true, errCSRF
	}
	return m.claims(c), true, nil
}

func (m *Manager) claims(c current) *parktoken.Claims {
	return &parktoken.Claims{Park: m.Park, Subject: c.user.Username, Role: parktoken.Role(c.user.Role),
		// The stream caps count per holder: per session here.
		ID: "session-" + c.sess.IDHash[:16], IssuedAt: c.sess.CreatedAt, ExpiresAt: c.sess.ExpiresAt}
}

// Routes registers the session endpoints on mux, each wrapped by mw.
func (m *Manager) Routes(mux *http.ServeMux, mw func(string, http.Handler) http.Handler) {
	handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, mw(pattern, h)) }
	handle("POST /api/v1/session", m.signIn)
	handle("GET /api/v1/session", m.get)
	handle("DELETE /api/v1/session", m.signOut)
	handle("PUT /api/v1/session/lang", m.setLang)
	handle("GET /api/v1/auth/oidc", m.oidcInfo)
	if m.OIDC != nil {
		handle("GET /auth/oidc/login", m.oidcLogin)
		handle("GET /auth/oidc/callback", m.oidcCallback)
	}
}

func writeErr(w http.ResponseWriter, err error) {
	var th *accounts.ThrottledError
	if errors.As(err, &th) {
		w.Header().Set("Retry-After", strconv.Itoa(int((th.RetryAfter+time.Second-1)/time.Second)))
	}
	apierror.Write(w, err)
}

// clientAddr is the address sign-ins are throttled by: the peer of the
// connection (a proxy's forwarding headers are not trusted).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// signIn answers POST /api/v1/session: a password sign-in.
func (m *Manager) signIn(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := httpjson.DecodeSmall(r, &req); err != nil {
		apierror.Write(w, err)
		return
	}
	switch {
	case req.Username == "":
		apierror.Write(w, apierror.InvalidField("username", "is required"))
		return
	case req.Password == "":
		apierror.Write(w, apierror.InvalidField("password", "is required"))
		return
	case len(req.Username) > 64 || len(req.Password) > accounts.MaxPasswordLen:
		writeErr(w, apierror.New(apierror.Unauthenticated, "unknown username or wrong password"))
		return
	}
	u, err := m.Accounts.Authenticate(r.Context(), req.Username, req.Password, clientAddr(r))
	if err != nil {
		m.Logger.WarnContext(r.Context(), "sign-in refused", "code", apierror.CodeOf(err), "addr", clientAddr(r))
		writeErr(w, err)
		return
	}
	su, err := m.State.User(r.Context(), u.Username)
	if err != nil {
		apierror.Write(w, err)
		return
	}
	c, err := m.start(r.Context(), w, r, su, "password")
	if err != nil {
		apierror.Write(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, http.StatusOK, m.info(c))
}

// get answers GET /api/v1/session: who is signed in, with a fresh CSRF
// token.
func (m *Manager) get(w http.ResponseWriter, r *http.Request) {
	c, ok, err := m.resolve(r)
	if !ok {
		err = errNoSession
	}
	if err != nil {
		apierror.Write(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, http.StatusOK, m.info(c))
}

// signOut answers DELETE /api/v1/session: the session is deleted (on every
// replica sharing the state) and the cookie cleared.
func (m *Manager) signOut(w http.ResponseWriter, r *http.Request) {
	c, ok := m.csrfChecked(w, r)
	if !ok {
		return
	}
	if err := m.State.DeleteSession(r.Context(), c.sess.IDHash); err != nil {
		apierror.Write(w, err)
		return
	}
	http.SetCookie(w, m.cookie(r, "", time.Time{}))
	m.Logger.InfoContext(r.Context(), "signed out", "user", c.user.Username, "session", c.sess.IDHash[:12])
	w.WriteHeader(http.StatusNoContent)
}

// setLang answers PUT /api/v1/session/lang: the signed-in person's
// language, kept with the account.
func (m *Manager) setLang(w http.ResponseWriter, r *http.Request) {
	c, ok := m.csrfChecked(w, r)
	if !ok {
		return
	}
	var req struct {
		Lang string `json:"lang"`
	}
	if err := httpjson.DecodeSmall(r, &req); err != nil {
		apierror.Write(w, err)
		return
	}
	if err := m.Accounts.SetLang(r.Context(), c.user.Username, req.Lang); err != nil {
		apierror.Write(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// csrfChecked resolves r's session and checks its CSRF token, answering
// the refusal itself.
func (m *Manager) csrfChecked(w http.ResponseWriter, r *http.Request) (current, bool) {
	c, ok, err := m.resolve(r)
	if !ok {
		err = errNoSession
	}
	if err == nil && !validCSRF(c.id, r.Header.Get(CSRFHeader)) {
		err = errCSRF
	}
	if err != nil {
		apierror.Write(w, err)
		return c, false
	}
	return c, true
}

// Sweep deletes expired sessions every interval until ctx ends (they are
// refused when met anyway; this keeps the table small).
func (m *Manager) Sweep(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := m.now()
			if n, err := m.State.DeleteExpiredSessions(ctx, now, now.Add(-m.idle())); err != nil {
				m.Logger.Warn("deleting expired sessions failed", "err", err)
			} else if n > 0 {
				m.Logger.Debug("expired sessions deleted", "n", n)
			}
		}
	}
}
