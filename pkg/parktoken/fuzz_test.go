package parktoken_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// FuzzVerify feeds the verifier anything. It must never panic, must refuse
// with a *parktoken.Error (Unauthorized, with a reason), and must accept
// only tokens that an independent check finds signed by the key set and
// valid for the park. FuzzVerifyClaims goes deeper into the claims. The key is fixed so that every fuzz worker (each runs
// this setup) shares it and the seed tokens verify in all of them.
func FuzzVerify(f *testing.F) {
	ks := fixedKeys(f, park, 1)
	priv := ks.Current().Signer().(ed25519.PrivateKey)
	kid := ks.Current().ID
	otherPark := fixedKeys(f, "chengdu-tspp", 2)
	v := verifierAt(ks, t0)
	hdr := map[string]any{"alg": "EdDSA", "typ": parktoken.TokenType, "kid": kid}

	valid := []string{
		issue(f, ks, parktoken.Viewer, time.Hour, t0),
		issue(f, ks, parktoken.Admin, time.Minute, t0.Add(-30*time.Second)),
		signRaw(hdr, validClaims(), priv),
	}
	for _, tok := range valid {
		if _, err := v.Verify(tok); err != nil {
			f.Fatalf("seed token refused: %v (%s)", err, parktoken.Reason(err))
		}
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(validClaims()))
	hs.Header["kid"] = kid
	hsToken, _ := hs.SignedString([]byte(ks.Current().PublicKey))

	seeds := append([]string{}, valid...)
	for _, tok := range valid {
		p := strings.Split(tok, ".")
		seeds = append(seeds,
			tok[:len(tok)-1],                          // truncated signature
			tok+"A",                                   // extended signature
			p[0]+"."+p[1]+".",                         // no signature
			p[0]+"."+p[1],                             // two segments
			p[1]+"."+p[0]+"."+p[2],                    // swapped segments
			p[0]+"."+p[1]+"."+p[2]+"."+p[2],           // four segments
			strings.Replace(tok, "e", "f", 1),         // one flipped character
			strings.ToUpper(tok[:10])+tok[10:],        // case damage in the header
			p[0]+"=."+p[1]+"."+p[2],                   // padding
			p[0]+"."+p[1]+"."+strings.Repeat("A", 86), // zero signature
		)
	}
	seeds = append(seeds,
		"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30",
		b64(map[string]any{"alg": "none", "typ": "JWT"})+"."+b64(validClaims())+".",
		hsToken,
		issue(f, otherPark, parktoken.Admin, time.Hour, t0),
		signRaw(hdr, validClaims(), otherPark.Current().Signer().(ed25519.PrivateKey)),
		signRaw(hdr, map[string]any{"iss": park, "aud": []string{"x", park}, "sub": "s", "role": "admin", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "j"}, priv),
		signRaw(hdr, map[string]any{"iss": park, "aud": park, "sub": "s", "role": "admin", "iat": 1e300, "exp": -1e300, "jti": "j"}, priv),
	)
	for _, s := range seeds {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			var te *parktoken.Error
			if !errors.As(err, &te) || !apierror.Is(err, apierror.Unauthorized) || te.Reason() == "" {
				t.Fatalf("refusal %v (%T) is not an Unauthorized *parktoken.Error with a reason", err, err)
			}
			return
		}
		if why := independentCheck(token, ks.Current().PublicKey, kid, t0); why != "" {
			t.Fatalf("Verify accepted a token the independent check refuses (%s): %q", why, token)
		}
		if c.Park != park || c.KeyID != kid || !c.Role.Valid() || c.Subject == "" {
			t.Fatalf("accepted with odd claims %+v", *c)
		}
	})
}

// independentCheck re-verifies an accepted token without the jwt package:
// canonical base64url segments, an EdDSA header naming the park's key, an
// Ed25519 signature by that key, and the park as issuer and audience with
// the token current at now (within the leeway). It returns why the token is
// bad, "" when it is good.
func independentCheck(token string, pub ed25519.PublicKey, kid string, now time.Time) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "segments"
	}
	var raw [3][]byte
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != p {
			return "encoding"
		}
		raw[i] = b
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), raw[2]) {
		return "signature"
	}
	var h struct{ Alg, Kid, Typ string }
	if json.Unmarshal(raw[0], &h) != nil || h.Alg != "EdDSA" || h.Kid != kid || h.Typ != parktoken.TokenType {
		return "header"
	}
	var c struct {
		Iss, Sub, Jti, Role string
		Aud                 json.RawMessage
		Exp, Iat            *float64
	}
	d := json.NewDecoder(bytes.NewReader(raw[1]))
	if d.Decode(&c) != nil || c.Iss != park || c.Exp == nil || c.Iat == nil || c.Sub == "" || c.Jti == "" {
		return "claims"
	}
	var aud any
	if json.Unmarshal(c.Aud, &aud) != nil {
		return "aud"
	}
	// Exactly one audience, the park.
	switch a := aud.(type) {
	case string:
		if a != park {
			return "aud"
		}
	case []any:
		if len(a) != 1 || a[0] != park {
			return "aud"
		}
	default:
		return "aud"
	}
	leeway := parktoken.Leeway.Seconds()
	t := float64(now.Unix())
	if *c.Exp < 0 || *c.Iat < 0 || t >= *c.Exp+leeway || t < *c.Iat-leeway {
		return "time"
	}
	if *c.Exp-*c.Iat > parktoken.MaxTTL.Seconds() {
		return "lifetime"
	}
	return ""
}
