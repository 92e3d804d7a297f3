package parktoken

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

// Federation tokens are what one park's gateway presents to another's: iss
// is the caller park, aud the callee, signed with the caller's current key.
const (
	// FederationType is the typ header of federation tokens.
	FederationType = "parkmesh-federation+jwt"
	// MaxFederationTTL is the longest a federation token may live (DESIGN:
	// exp ≤ 5 minutes after iat).
	MaxFederationTTL = 5 * time.Minute
	// ReasonPeer: iss is not an active peer.
	ReasonPeer = "peer"
	// ReasonScope: the token's scope does not cover the request.
	ReasonScope = "scope"
	// ReasonReplay: the token's jti was accepted before.
	ReasonReplay = "replay"
	// ReasonReplayCapacity: the peer has more unexpired tokens in use than
	// the replay cache holds for one issuer, so this one cannot be
	// remembered and is refused.
	ReasonReplayCapacity = "replay_capacity"
)

// Federation scopes.
const (
	ScopeSearch   = "federation:search"
	ScopeListings = "federation:listings"
	ScopeChanges  = "federation:changes"
	ScopePeering  = "federation:peering"
	// ScopeInterests covers delivering expressions of interest and their
	// status changes (POST /federation/v1/interests…).
	ScopeInterests = "federation:interests"
)

// fedClaims is a federation token's payload (time claims as in
// tokenClaims: JSON numbers only).
type fedClaims struct {
	Scope     string       `json:"scope"`
	ExpiresAt *numericDate `json:"exp,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
	jwt.RegisteredClaims
}

func (c *fedClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date(), nil }
func (c *fedClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date(), nil }
func (c *fedClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date(), nil }

func dateOf(t time.Time) *numericDate { return &numericDate{*jwt.NewNumericDate(t)} }

// Validate implements jwt.ClaimsValidator. The jwt package calls it even
// when its own checks failed (a missing exp among them), so it must cope
// with any claim missing.
func (c *fedClaims) Validate() error {
	switch {
	case c.Issuer == "":
		return errNoIssuer
	case len(c.Audience) == 0:
		return errNoAudience
	case len(c.Audience) != 1:
		return errAudienceList
	case c.ID == "" || c.IssuedAt == nil || c.ExpiresAt == nil:
		return errNoClaims
	case outOfRange(c.ExpiresAt, c.IssuedAt, c.NotBefore):
		return errTimeRange
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxFederationTTL:
		return errLifetime
	}
	return nil
}

var (
	errLifetime    = errors.New("exp more than 5 minutes after iat")
	errUnknownPeer = errors.New("iss is not an active peer")
)

// IssueFederation signs a token from ks's park to the park aud, for scope,
// valid for ttl (at most MaxFederationTTL).
func IssueFederation(ks *parkkey.KeySet, aud, scope string, ttl time.Duration, now time.Time) (string, error) {
	if ks == nil || ks.Current() == nil {
		return "", apierror.New(apierror.Internal, "no signing key")
	}
	if ttl <= 0 || ttl > MaxFederationTTL {
		return "", apierror.InvalidField("ttl", "must be more than 0 and at most %s", MaxFederationTTL)
	}
	jti, err := newJTI()
	if err != nil {
		return "", err
	}
	claims := &fedClaims{
		Scope: scope, IssuedAt: dateOf(now), NotBefore: dateOf(now), ExpiresAt: dateOf(now.Add(ttl)),
		RegisteredClaims: jwt.RegisteredClaims{Issuer: ks.Park(), Audience: jwt.ClaimStrings{aud}, ID: jti},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = ks.Current().ID
	t.Header["typ"] = FederationType
	return t.SignedString(ks.Current().Signer())
}

// PeerKeys gives a verifier the pinned keys of active peers.
type PeerKeys interface {
	// PeerKey returns the key kid pinned for the active peer park. active
	// is false when park is not an active peer.
	PeerKey(park, kid string) (key ed25519.PublicKey, active bool)
	// RefreshKeys is called once when an active peer presents an unknown
	// kid: it may fetch the peer's JWKS again (rate-limited) so a rotation
	// is picked up. It reports whether anything changed.
	RefreshKeys(park string) bool
}

// FederationClaims is what a verified federation token says.
type FederationClaims struct {
	Issuer, Audience, Scope, ID, KeyID string
	IssuedAt, ExpiresAt                time.Time
}

// FederationVerifier checks federation tokens addressed to Self.
type FederationVerifier struct {
	Self  string
	Peers PeerKeys
	Now   func() time.Time
	// Replay, when set, makes every token usable once: Verify remembers
	// each jti it accepts until the token expires and refuses it after.
	Replay *ReplayCache
}

// Verify checks a federation token as RFC 8725 asks: EdDSA only, typ
// FederationType, iss an active peer, kid one of that peer's pinned keys
// (one JWKS refresh on an unknown kid), aud exactly this park, exp/nbf/iat
// with Leeway, exp ≤ iat + 5 min, jti present, scope equal to scope, and
// (with Replay) a jti not accepted before, which it then remembers.
// Failures are *Error, Unauthorized with a generic message and a Reason.
func (v *FederationVerifier) Verify(token, scope string) (*FederationClaims, error) {
	c, err := v.check(token, scope)
	if err != nil || v.Replay == nil {
		return c, err
	}
	if err := v.Replay.use(c.Issuer, c.ID, c.ExpiresAt.Add(Leeway), v.now()); err != nil {
		return nil, err
	}
	return c, nil
}

// Check is Verify without using the token up: it refuses a jti already
// accepted but does not remember this one. It is for looking at a request
// before the handler that serves it calls Verify (deciding whether the
// caller may continue a trace), so a token is not spent twice on one
// request.
func (v *FederationVerifier) Check(token, scope string) (*FederationClaims, error) {
	c, err := v.check(token, scope)
	if err != nil || v.Replay == nil {
		return c, err
	}
	if v.Replay.seen(c.Issuer, c.ID, v.now()) {
		return nil, unauthorized(ReasonReplay, errReplayed)
	}
	return c, nil
}

func (v *FederationVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *FederationVerifier) check(token, scope string) (*FederationClaims, error) {
	if token == "" {
		return nil, unauthorized(ReasonMissing, nil)
	}
	if len(token) > MaxTokenSize {
		return nil, unauthorized(ReasonMalformed, errors.New("token too long"))
	}
	hdr, err := readHeader(token)
	if err != nil {
		return nil, err
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithAudience(v.Self),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	)
	var claims fedClaims
	refreshed := false
	keyfunc := func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		key, active := v.Peers.PeerKey(iss, hdr.Kid)
		if !active {
			return nil, errUnknownPeer
		}
		if key == nil && !refreshed {
			refreshed = true
			if v.Peers.RefreshKeys(iss) {
				key, _ = v.Peers.PeerKey(iss, hdr.Kid)
			}
		}
		if key == nil {
			return nil, errUnknownKid
		}
		return key, nil
	}
	if _, err := parser.ParseWithClaims(token, &claims, keyfunc); err != nil {
		reason := reasonOf(err)
		if errors.Is(err, errUnknownPeer) {
			reason = ReasonPeer
		}
		return nil, unauthorized(reason, err)
	}
	if hdr.Typ != FederationType {
		return nil, unauthorized(ReasonType, fmt.Errorf("typ %q", clip(hdr.Typ)))
	}
	if claims.Scope != scope {
		return nil, unauthorized(ReasonScope, fmt.Errorf("scope %q, need %q", clip(claims.Scope), scope))
	}
	return &FederationClaims{
		Issuer: claims.Issuer, Audience: v.Self, Scope: claims.Scope, ID: claims.ID, KeyID: hdr.Kid,
		IssuedAt: claims.IssuedAt.Time, ExpiresAt: claims.ExpiresAt.Time,
	}, nil
}

// VerifyWithKey checks a federation token signed by a key the caller
// presents itself (the peering handshake, where the peer is not yet
// pinned): the same checks as Verify, but iss must equal iss and the key is
// given.
func VerifyWithKey(token, self, iss, scope string, keys map[string]ed25519.PublicKey, now time.Time) (*FederationClaims, error) {
	v := &FederationVerifier{Self: self, Peers: staticPeer{park: iss, keys: keys}, Now: func() time.Time { return now }}
	return v.Verify(token, scope)
}

type staticPeer struct {
	park string
	keys map[string]ed25519.PublicKey
}

func (s staticPeer) PeerKey(park, kid string) (ed25519.PublicKey, bool) {
	if park != s.park {
		return nil, false
	}
	return s.keys[kid], true
}

func (staticPeer) RefreshKeys(string) bool { return false }
