package parktoken

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

type onePeer struct {
	park string
	kid  string
	key  ed25519.PublicKey
}

func (p onePeer) PeerKey(park, kid string) (ed25519.PublicKey, bool) {
	if park != p.park {
		return nil, false
	}
	if kid != p.kid {
		return nil, true
	}
	return p.key, true
}

func (onePeer) RefreshKeys(string) bool { return false }

// FuzzFederationVerify: the federation verifier never panics and accepts
// only tokens that are byte-for-byte one the peer actually issued.
func FuzzFederationVerify(f *testing.F) {
	seed := make([]byte, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	ks, err := parkkey.FromKeys("xian-hitech", priv)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	// Built by hand with a fixed jti: fuzz workers re-run this setup, and
	// Ed25519 signatures are deterministic, so every process has the same
	// valid token.
	claims := &fedClaims{
		Scope: ScopeSearch, IssuedAt: dateOf(now), NotBefore: dateOf(now), ExpiresAt: dateOf(now.Add(time.Minute)),
		RegisteredClaims: jwt.RegisteredClaims{Issuer: "xian-hitech", Audience: jwt.ClaimStrings{"chengdu-hitech"}, ID: "fixed-jti"},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = ks.Current().ID
	tok.Header["typ"] = FederationType
	valid, err := tok.SignedString(priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-2])
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	v := &FederationVerifier{Self: "chengdu-hitech", Peers: onePeer{"xian-hitech", ks.Current().ID, priv.Public().(ed25519.PublicKey)},
		Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token, ScopeSearch)
		if err != nil {
			if Reason(err) == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if token != valid {
			t.Fatalf("accepted a token the peer never issued: %q (%+v)", token, c)
		}
	})
}
