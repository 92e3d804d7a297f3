package parktoken_test

import (
	"crypto/ed25519"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// fedVerifierAt is park's federation verifier trusting peerPark's key set,
// with a replay cache holding max jtis per issuer, at a clock now returns.
func fedVerifierAt(peer parktoken.PeerKeys, max int, now func() time.Time) *parktoken.FederationVerifier {
	return &parktoken.FederationVerifier{Self: park, Peers: peer, Now: now, Replay: parktoken.NewReplayCache(max)}
}

func fedClaims() map[string]any {
	return map[string]any{"iss": peerPark, "aud": park, "iat": t0.Unix(), "nbf": t0.Unix(),
		"exp": t0.Add(time.Minute).Unix(), "jti": "j1", "scope": parktoken.ScopeSearch}
}

// TestFederationClaimAttacks: validly signed federation tokens with bad
// claims are refused with 401 and a reason, never a panic (a token without
// exp used to panic the verifier, reachable through the peering handshake
// with a key the caller brings), and a refused token leaves no trace in
// the replay cache.
func TestFederationClaimAttacks(t *testing.T) {
	peerKeys := fixedKeys(t, peerPark, 3)
	priv := peerKeys.Current().Signer().(ed25519.PrivateKey)
	hdr := map[string]any{"alg": "EdDSA", "typ": parktoken.FederationType, "kid": peerKeys.Current().ID}
	with := func(k string, v any) map[string]any {
		c := fedClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name   string
		claims map[string]any
		reason string
	}{
		{"no exp", with("exp", nil), parktoken.ReasonClaims},
		{"exp null", with("exp", json.RawMessage("null")), parktoken.ReasonClaims},
		{"no iat", with("iat", nil), parktoken.ReasonClaims},
		{"no exp and no iat", func() map[string]any { c := with("exp", nil); delete(c, "iat"); return c }(), parktoken.ReasonClaims},
		{"exp as a word", with("exp", "soon"), parktoken.ReasonMalformed},
		{"exp as a numeric string", with("exp", strconv.FormatInt(t0.Add(time.Minute).Unix(), 10)), parktoken.ReasonMalformed},
		{"iat as a numeric string", with("iat", strconv.FormatInt(t0.Unix(), 10)), parktoken.ReasonMalformed},
		{"exp as an object", with("exp", map[string]any{}), parktoken.ReasonMalformed},
		{"nbf beyond int64", with("nbf", 1e300), parktoken.ReasonMalformed},
		{"aud list with the callee and another", with("aud", []string{park, "siliconvalley-offshore"}), parktoken.ReasonAudience},
		{"aud list with another and the callee", with("aud", []string{"siliconvalley-offshore", park}), parktoken.ReasonAudience},
		{"no jti", with("jti", nil), parktoken.ReasonClaims},
		{"lifetime over 5 minutes", with("exp", t0.Add(6*time.Minute).Unix()), parktoken.ReasonLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := fedVerifierAt(pinnedPeer{peerKeys}, 0, func() time.Time { return t0 })
			tok := signRaw(hdr, tt.claims, priv)
			for _, verify := range []func(string, string) (*parktoken.FederationClaims, error){v.Check, v.Verify} {
				c, err := verify(tok, parktoken.ScopeSearch)
				if err == nil {
					t.Fatalf("accepted: %+v", *c)
				}
				assertUnauthorized(t, err, tt.reason)
			}
			if n := v.Replay.Len(peerPark); n != 0 {
				t.Errorf("replay cache holds %d jtis after refusals, want 0", n)
			}
		})
	}
	// The same checks through VerifyWithKey, what the peering handshake
	// uses with the keys the caller presents.
	keys := map[string]ed25519.PublicKey{peerKeys.Current().ID: peerKeys.Current().PublicKey}
	for _, tt := range tests {
		_, err := parktoken.VerifyWithKey(signRaw(hdr, tt.claims, priv), park, peerPark, parktoken.ScopeSearch, keys, t0)
		if err == nil {
			t.Errorf("VerifyWithKey accepted %s", tt.name)
		}
	}
	// Sanity: the claims as made, and aud as a list of one, pass.
	for name, c := range map[string]map[string]any{"as made": fedClaims(), "aud list of one": with("aud", []string{park})} {
		if _, err := parktoken.VerifyWithKey(signRaw(hdr, c, priv), park, peerPark, parktoken.ScopeSearch, keys, t0); err != nil {
			t.Errorf("%s: %v (%s)", name, err, parktoken.Reason(err))
		}
	}
}

// TestFederationReplay: a federation token is accepted once; Check looks
// without using it up; jtis are per issuer; the cache forgets a jti once
// its token has expired, and refuses rather than forgets when an issuer
// has too many tokens in flight.
func TestFederationReplay(t *testing.T) {
	peerKeys := fixedKeys(t, peerPark, 3)
	now := t0
	clock := func() time.Time { return now }
	v := fedVerifierAt(pinnedPeer{peerKeys}, 3, clock)
	issue := func(scope string) string {
		tok, err := parktoken.IssueFederation(peerKeys, park, scope, time.Minute, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tok := issue(parktoken.ScopeSearch)
	if _, err := v.Check(tok, parktoken.ScopeSearch); err != nil {
		t.Fatalf("Check of a fresh token: %v (%s)", err, parktoken.Reason(err))
	}
	if _, err := v.Verify(tok, parktoken.ScopeSearch); err != nil {
		t.Fatalf("first use after Check: %v (%s)", err, parktoken.Reason(err))
	}
	for _, verify := range []func(string, string) (*parktoken.FederationClaims, error){v.Check, v.Verify} {
		_, err := verify(tok, parktoken.ScopeSearch)
		assertUnauthorized(t, err, parktoken.ReasonReplay)
	}
	// A fresh token per request (what clubsearch and the follower do).
	if _, err := v.Verify(issue(parktoken.ScopeSearch), parktoken.ScopeSearch); err != nil {
		t.Errorf("second fresh token: %v", err)
	}
	// The same jti from another issuer is another token: the cache is per
	// issuer (only the peer's own key could have signed it anyway).
	other := fixedKeys(t, "siliconvalley-offshore", 4)
	both := fedVerifierAt(multiPeer{pinnedPeer{peerKeys}, pinnedPeer{other}}, 3, clock)
	c := fedClaims()
	hdr := func(ks pinnedPeer) map[string]any {
		return map[string]any{"alg": "EdDSA", "typ": parktoken.FederationType, "kid": ks.ks.Current().ID}
	}
	c2 := fedClaims()
	c2["iss"] = other.Park()
	for _, tok := range []string{
		signRaw(hdr(pinnedPeer{peerKeys}), c, peerKeys.Current().Signer().(ed25519.PrivateKey)),
		signRaw(hdr(pinnedPeer{other}), c2, other.Current().Signer().(ed25519.PrivateKey)),
	} {
		if _, err := both.Verify(tok, parktoken.ScopeSearch); err != nil {
			t.Errorf("same jti, other issuer: %v (%s)", err, parktoken.Reason(err))
		}
	}

	// Full: a third token in flight fills the cache of 3; the fourth is
	// refused rather than accepted unremembered.
	if _, err := v.Verify(issue(parktoken.ScopeSearch), parktoken.ScopeSearch); err != nil {
		t.Fatalf("third token: %v", err)
	}
	_, err := v.Verify(issue(parktoken.ScopeSearch), parktoken.ScopeSearch)
	assertUnauthorized(t, err, parktoken.ReasonReplayCapacity)
	if n := v.Replay.Len(peerPark); n != 3 {
		t.Errorf("cache holds %d, want 3", n)
	}
	// Once those tokens have expired (plus leeway) their jtis are
	// forgotten and new tokens are remembered again.
	now = t0.Add(time.Minute + parktoken.Leeway + time.Second)
	if _, err := v.Verify(issue(parktoken.ScopeSearch), parktoken.ScopeSearch); err != nil {
		t.Fatalf("after expiry: %v (%s)", err, parktoken.Reason(err))
	}
	if n := v.Replay.Len(peerPark); n != 1 {
		t.Errorf("cache holds %d after the sweep, want 1", n)
	}
	// The expired token stays refused, for its expiry now.
	_, err = v.Verify(tok, parktoken.ScopeSearch)
	assertUnauthorized(t, err, parktoken.ReasonExpired)
}

// multiPeer is a peer set of several parks.
type multiPeer []pinnedPeer

func (m multiPeer) PeerKey(park, kid string) (ed25519.PublicKey, bool) {
	for _, p := range m {
		if k, active := p.PeerKey(park, kid); active {
			return k, true
		}
	}
	return nil, false
}

func (multiPeer) RefreshKeys(string) bool { return false }

// TestRevokedLocalToken: a park-local token whose jti the revocation set
// names is refused with reason revoked; others pass.
func TestRevokedLocalToken(t *testing.T) {
	ks := fixedKeys(t, park, 1)
	revoked := map[string]bool{}
	v := parktoken.NewVerifier(parktoken.StaticKeys(ks), parktoken.WithClock(func() time.Time { return t0 }),
		parktoken.WithRevocations(func(jti string) bool { return revoked[jti] }))
	a, b := issue(t, ks, parktoken.Admin, time.Hour, t0), issue(t, ks, parktoken.Viewer, time.Hour, t0)
	ca, err := v.Verify(a)
	if err != nil {
		t.Fatal(err)
	}
	revoked[ca.ID] = true
	_, err = v.Verify(a)
	assertUnauthorized(t, err, parktoken.ReasonRevoked)
	if _, err := v.Verify(b); err != nil {
		t.Errorf("another token after a revocation: %v", err)
	}
}
