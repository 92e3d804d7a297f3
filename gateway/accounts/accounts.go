// Package accounts holds the park staff's accounts in the gateway's state:
// username, display name, role (viewer, editor, admin, as park-local tokens
// have), an argon2id password hash with its own salt and parameters, a
// disabled flag and the preferred language; and sign-in with a password,
// throttled per account and per client address. Everything is kept behind
// gateway/state's methods, so every replica that shares the state agrees.
package accounts

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// Languages are the portal's languages; the first is the default.
var Languages = []string{"zh", "en"}

// MinPasswordLen and MaxPasswordLen bound a password (in bytes).
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// User is an account as callers see it: never its password hash.
type User struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	Lang        string `json:"lang"`
	Disabled    bool   `json:"disabled"`
	// OIDC says the account signs in through the park's OpenID Connect
	// provider.
	OIDC      bool      `json:"oidc,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func userOf(u state.User) User {
	return User{Username: u.Username, DisplayName: u.DisplayName, Role: u.Role, Lang: u.Lang,
		Disabled: u.Disabled, OIDC: u.OIDCSubject != "", CreatedAt: u.CreatedAt}
}

// Accounts manages the park's staff accounts.
type Accounts struct {
	State *state.DB
	// Hash are the parameters new hashes are made with.
	Hash HashParams
	// PerUser and PerAddr throttle failed sign-ins per account and per
	// client address (an IPv6 address counts by its /64).
	PerUser, PerAddr state.LoginLimit
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	dummyOnce sync.Once
	dummy     string // a hash verified for unknown users, so they take as long
}

// Default throttles: 5 failures in 15 minutes lock an account for 5
// minutes; 20 failures in 15 minutes lock an address for 15 minutes.
var (
	DefaultPerUser = state.LoginLimit{Max: 5, Window: 15 * time.Minute, Lockout: 5 * time.Minute}
	DefaultPerAddr = state.LoginLimit{Max: 20, Window: 15 * time.Minute, Lockout: 15 * time.Minute}
)

// New returns the accounts kept in db with the default parameters.
func New(db *state.DB) *Accounts {
	return &Accounts{State: db, Hash: DefaultHashParams, PerUser: DefaultPerUser, PerAddr: DefaultPerAddr}
}

func (a *Accounts) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// ValidateUsername checks a username: 1-64 characters of lower-case
// letters, digits and . _ - @ (an e-mail address fits), starting with a
// letter or digit. The error is Invalid naming field.
func ValidateUsername(field, s string) error {
	if s == "" || len(s) > 64 {
		return apierror.InvalidField(field, "must be 1 to 64 characters")
	}
	for i, c := range s {
		ok := 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && strings.ContainsRune("._-@", c)
		if !ok {
			return apierror.InvalidField(field, "must be lower-case letters, digits and . _ - @, starting with a letter or digit")
		}
	}
	return nil
}

// ValidateDisplayName checks a display name: 1 to 100 printable characters.
func ValidateDisplayName(s string) error {
	if s == "" || utf8.RuneCountInString(s) > 100 || !utf8.ValidString(s) {
		return apierror.InvalidField("display_name", "must be 1 to 100 characters")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return apierror.InvalidField("display_name", "must hold printable characters only")
		}
	}
	return nil
}

// ValidatePassword checks a new password's length; the error is Invalid
// naming field "password". (Length is what matters; no composition rules,
// as NIST SP 800-63B advises.)
func ValidatePassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return apierror.InvalidField("password", "must be %d to %d bytes long", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// ValidateLang checks a language code.
func ValidateLang(lang string) error {
	for _, l := range Languages {
		if lang == l {
			return nil
		}
	}
	return apierror.InvalidField("lang", "must be zh or en")
}

// NewUser is what Add takes.
type NewUser struct {
	Username, DisplayName, Role, Password, Lang string
	// OIDCSubject links the account to the park's OpenID Connect provider
	// ("<issuer> <sub>"); such an account needs no password.
	OIDCSubject string
}

// Add creates an account. Invalid names the field at fault; Conflict when
// the username is taken.
func (a *Accounts) Add(ctx context.Context, n NewUser) (User, error) {
	if err := ValidateUsername("username", n.Username); err != nil {
		return User{}, err
	}
	if n.DisplayName == "" {
		n.DisplayName = n.Username
	}
	if err := ValidateDisplayName(n.DisplayName); err != nil {
		return User{}, err
	}
	if _, err := parktoken.ParseRole(n.Role); err != nil {
		return User{}, err
	}
	if n.Lang == "" {
		n.Lang = Languages[0]
	}
	if err := ValidateLang(n.Lang); err != nil {
		return User{}, err
	}
	var hash string
	if n.OIDCSubject == "" || n.Password != "" {
		if err := ValidatePassword(n.Password); err != nil {
			return User{}, err
		}
		var err error
		if hash, err = HashPassword(n.Password, a.Hash); err != nil {
			return User{}, err
		}
	}
	now := a.now().UTC()
	u := state.User{Username: n.Username, DisplayName: n.DisplayName, Role: n.Role, PasswordHash: hash,
		Lang: n.Lang, OIDCSubject: n.OIDCSubject, CreatedAt: now, UpdatedAt: now}
	if err := a.State.CreateUser(ctx, u); err != nil {
		if errors.Is(err, state.ErrExists) {
			return User{}, &apierror.Error{Code: apierror.Conflict, Field: "username", Message: "an account with this name exists"}
		}
		return User{}, err
	}
	return userOf(u), nil
}

// List returns every account by username.
func (a *Accounts) List(ctx context.Context) ([]User, error) {
	us, err := a.State.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(us))
	for _, u := range us {
		out = append(out, userOf(u))
	}
	return out, nil
}

// Get returns one account; NotFound when there is none.
func (a *Accounts) Get(ctx context.Context, username string) (User, error) {
	u, err := a.State.User(ctx, username)
	if errors.Is(err, state.ErrNotFound) {
		return User{}, apierror.New(apierror.NotFound, "no account %q", clip(username))
	}
	return userOf(u), err
}

func (a *Accounts) update(ctx context.Context, username string, fn func(*state.User)) (User, error) {
	u, err := a.State.UpdateUser(ctx, username, a.now(), fn)
	if errors.Is(err, state.ErrNotFound) {
		return User{}, apierror.New(apierror.NotFound, "no account %q", clip(username))
	}
	return userOf(u), err
}

// SetDisabled disables (signing its sessions out) or enables an account.
func (a *Accounts) SetDisabled(ctx context.Context, username string, disabled bool) (User, error) {
	return a.update(ctx, username, func(u *state.User) { u.Disabled = disabled })
}

// ResetPassword sets a new password and signs the account's sessions out.
func (a *Accounts) ResetPassword(ctx context.Context, username, password string) (User, error) {
	if err := ValidatePassword(password); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(password, a.Hash)
	if err != nil {
		return User{}, err
	}
	u, err := a.update(ctx, username, func(u *state.User) { u.PasswordHash = hash })
	if err != nil {
		return u, err
	}
	// A new password ends what the old one opened; failures are forgotten.
	_ = a.State.ClearLoginFailures(ctx, userKey(username))
	return u, a.State.DeleteUserSessions(ctx, username)
}

// SetLang keeps the account's portal language.
func (a *Accounts) SetLang(ctx context.Context, username, lang string) error {
	if err := ValidateLang(lang); err != nil {
		return err
	}
	_, err := a.update(ctx, username, func(u *state.User) { u.Lang = lang })
	return err
}

// SetRole changes the role of an account (the OIDC sign-in keeps it as the
// provider's claims say).
func (a *Accounts) SetRole(ctx context.Context, username, role string) (User, error) {
	if _, err := parktoken.ParseRole(role); err != nil {
		return User{}, err
	}
	return a.update(ctx, username, func(u *state.User) { u.Role = role })
}

// ThrottledError is a sign-in refused because the account or address
// failed too often: TooManyRequests, with when to retry.
type ThrottledError struct {
	public     *apierror.Error
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string { return e.public.Error() }

// Unwrap gives the *apierror.Error (TooManyRequests) callers answer with.
func (e *ThrottledError) Unwrap() error { return e.public }

func userKey(username string) string { return "user:" + username }

// addrKey is the throttling key of a client address: IPv4 as is, IPv6 by
// its /64 (one host usually holds the whole prefix).
func addrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return "addr:" + clip(addr)
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + ip.String()
}

var errBadCredentials = apierror.New(apierror.Unauthenticated, "unknown username or wrong password")

// Authenticate checks a password sign-in from client address addr. It
// returns Unauthorized with the same message whether the account is
// unknown or the password wrong (an unknown user costs a hash all the
// same), a *ThrottledError (TooManyRequests) while the account or the
// address is locked, and Forbidden for a disabled account whose password
// was right.
func (a *Accounts) Authenticate(ctx context.Context, username, password, addr string) (User, error) {
	now := a.now()
	ukey, akey := userKey(username), addrKey(addr)
	for _, key := range []string{akey, ukey} {
		until, err := a.State.LoginLockedUntil(ctx, key, now)
		if err != nil {
			return User{}, err
		}
		if !until.IsZero() {
			return User{}, throttled(until.Sub(now))
		}
	}
	u, err := a.State.User(ctx, username)
	switch {
	case errors.Is(err, state.ErrNotFound), err == nil && u.PasswordHash == "":
		a.fakeVerify(password)
		return User{}, a.fail(ctx, ukey, akey, now)
	case err != nil:
		return User{}, err
	}
	ok, err := VerifyPassword(u.PasswordHash, password)
	if err != nil {
		return User{}, err
	}
	if !ok {
		return User{}, a.fail(ctx, ukey, akey, now)
	}
	if u.Disabled {
		return User{}, apierror.New(apierror.Forbidden, "this account is disabled; ask the park's administrator")
	}
	if err := a.State.ClearLoginFailures(ctx, ukey); err != nil {
		return User{}, err
	}
	return userOf(u), nil
}

func throttled(d time.Duration) error {
	if d < time.Second {
		d = time.Second
	}
	return &ThrottledError{public: apierror.New(apierror.TooManyRequests, "too many failed sign-ins; try again later"), RetryAfter: d}
}

// fail counts a failed sign-in against the account and the address; the
// failure that reaches a limit is answered as throttled already.
func (a *Accounts) fail(ctx context.Context, ukey, akey string, now time.Time) error {
	var locked time.Time
	for _, k := range []struct {
		key string
		lim state.LoginLimit
	}{{ukey, a.PerUser}, {akey, a.PerAddr}} {
		until, err := a.State.RecordLoginFailure(ctx, k.key, now, k.lim)
		if err != nil {
			return err
		}
		if until.After(locked) {
			locked = until
		}
	}
	if !locked.IsZero() {
		return throttled(locked.Sub(now))
	}
	return errBadCredentials
}

func (a *Accounts) fakeVerify(password string) {
	a.dummyOnce.Do(func() { a.dummy, _ = HashPassword("parkmesh-no-such-user", a.Hash) })
	_, _ = VerifyPassword(a.dummy, password)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
