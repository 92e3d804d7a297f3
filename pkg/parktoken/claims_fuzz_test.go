package parktoken_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// FuzzVerifyClaims signs tokens whose claim sets the fuzzer chooses with a
// pinned key (the park's own for park-local tokens, a peer's for
// federation tokens), so every token reaches the claim checks: missing,
// null, string, negative or huge time claims, several audiences, no jti,
// any JSON merged over the claims. The verifiers must never panic, must
// refuse with an Unauthorized *parktoken.Error with a reason, must accept
// only claim sets an independent check finds well-formed, and must accept
// a federation jti once.
func FuzzVerifyClaims(f *testing.F) {
	ks := fixedKeys(f, park, 1)
	local := verifierAt(ks, t0)
	localPriv := ks.Current().Signer().(ed25519.PrivateKey)
	peerKeys := fixedKeys(f, peerPark, 3)
	peerPriv := peerKeys.Current().Signer().(ed25519.PrivateKey)
	fed := &parktoken.FederationVerifier{
		Self: park, Peers: pinnedPeer{peerKeys}, Now: func() time.Time { return t0 },
		Replay: parktoken.NewReplayCache(0),
	}
	accepted := map[string]bool{} // federation jtis accepted so far

	// sel picks, two bits per time claim, what it is (00 as made, 01
	// missing, 10 the fuzzed offset from t0, 11 the offset as a string),
	// then aud (00 as made, 01 missing, 10 [self, aud], 11 aud), and one
	// bit each: jti from the fuzzer, no sub, iss = aud, raw merged over the
	// claims, exp null, federation rather than park-local.
	f.Add(uint16(0), int64(0), int64(0), int64(0), "", "", []byte(nil))
	f.Add(uint16(1<<15), int64(0), int64(0), int64(0), "", "j2", []byte(nil))
	f.Add(uint16(0b01), int64(0), int64(0), int64(0), "", "", []byte(nil))                                  // no exp
	f.Add(uint16(0b01<<15|0b01), int64(0), int64(0), int64(0), "", "", []byte(nil))                         // no exp, federation
	f.Add(uint16(0b0100), int64(0), int64(0), int64(0), "", "", []byte(nil))                                // no iat
	f.Add(uint16(1<<15|0b0100), int64(0), int64(0), int64(0), "", "", []byte(nil))                          // no iat, federation
	f.Add(uint16(0b11), int64(3600), int64(0), int64(0), "", "", []byte(nil))                               // exp as a string
	f.Add(uint16(1<<15|0b11), int64(60), int64(0), int64(0), "", "", []byte(nil))                           // exp as a string, federation
	f.Add(uint16(0b10<<6), int64(0), int64(0), int64(0), "chengdu-tspp", "", []byte(nil))                   // aud list
	f.Add(uint16(1<<15|0b10<<6), int64(0), int64(0), int64(0), "chengdu-tspp", "", []byte(nil))             // aud list, federation
	f.Add(uint16(0b1010), int64(400*24*3600), int64(0), int64(0), "", "", []byte(nil))                      // 400 days
	f.Add(uint16(1<<15|0b1010), int64(600), int64(0), int64(0), "", "", []byte(nil))                        // 10 minutes, federation
	f.Add(uint16(1<<14), int64(0), int64(0), int64(0), "", "", []byte(nil))                                 // exp null
	f.Add(uint16(1<<13), int64(0), int64(0), int64(0), "", "", []byte(`{"nbf":1e300}`))                     // huge nbf
	f.Add(uint16(1<<15|1<<13), int64(0), int64(0), int64(0), "", "", []byte(`{"exp":-1e300,"iat":1e300}`))  // huge times
	f.Add(uint16(1<<13), int64(0), int64(0), int64(0), "", "", []byte(`{"aud":[],"exp":{},"iat":[1]}`))     // odd types
	f.Add(uint16(1<<15|1<<13), int64(0), int64(0), int64(0), "", "", []byte(`{"exp":1772355630.5}`))        // fractional
	f.Add(uint16(1<<13), int64(0), int64(0), int64(0), "", "", []byte(`{"EXP":1,"Role":"admin","jti":""}`)) // case games

	f.Fuzz(func(t *testing.T, sel uint16, exp, iat, nbf int64, aud, jti string, raw []byte) {
		federation := sel&(1<<15) != 0
		self, iss := park, park
		var claims map[string]any
		if federation {
			iss = peerPark
			claims = map[string]any{"iss": peerPark, "aud": park, "iat": t0.Unix(), "nbf": t0.Unix(),
				"exp": t0.Add(time.Minute).Unix(), "jti": "j-" + strconv.Itoa(int(sel)), "scope": parktoken.ScopeSearch}
		} else {
			claims = validClaims()
		}
		for i, name := range []string{"exp", "iat", "nbf"} {
			off := []int64{exp, iat, nbf}[i] % (1 << 40) // keep t0+off inside int64
			switch sel >> (2 * i) & 3 {
			case 1:
				delete(claims, name)
			case 2:
				claims[name] = t0.Unix() + off
			case 3:
				claims[name] = strconv.FormatInt(t0.Unix()+off, 10)
			}
		}
		switch sel >> 6 & 3 {
		case 1:
			delete(claims, "aud")
		case 2:
			claims["aud"] = []string{self, aud}
		case 3:
			claims["aud"] = aud
		}
		if sel&(1<<8) != 0 {
			claims["jti"] = jti
		}
		if sel&(1<<9) != 0 {
			delete(claims, "sub")
		}
		if sel&(1<<10) != 0 {
			claims["iss"] = aud
		}
		if sel&(1<<14) != 0 {
			claims["exp"] = nil
		}
		if sel&(1<<13) != 0 {
			var extra map[string]any
			if json.Unmarshal(raw, &extra) == nil {
				for k, v := range extra {
					claims[k] = v
				}
			}
		}
		payload, err := json.Marshal(claims)
		if err != nil {
			return
		}
		typ, priv, kid := parktoken.TokenType, localPriv, ks.Current().ID
		if federation {
			typ, priv, kid = parktoken.FederationType, peerPriv, peerKeys.Current().ID
		}
		token := signPayload(map[string]any{"alg": "EdDSA", "typ": typ, "kid": kid}, payload, priv)

		var verr error
		if federation {
			var c *parktoken.FederationClaims
			c, verr = fed.Verify(token, parktoken.ScopeSearch)
			if verr == nil {
				if accepted[c.ID] {
					t.Fatalf("federation jti %q accepted twice", c.ID)
				}
				accepted[c.ID] = true
			}
		} else {
			_, verr = local.Verify(token)
		}
		if verr != nil {
			var te *parktoken.Error
			if !errors.As(verr, &te) || !apierror.Is(verr, apierror.Unauthorized) || te.Reason() == "" {
				t.Fatalf("refusal %v (%T) is not an Unauthorized *parktoken.Error with a reason", verr, verr)
			}
			return
		}
		if why := wellFormed(payload, federation, iss, self, t0); why != "" {
			t.Fatalf("accepted a claim set the independent check refuses (%s): %s", why, payload)
		}
	})
}

// peerPark is the peer whose federation tokens FuzzVerifyClaims signs.
const peerPark = "chengdu-hitech"

// pinnedPeer is a peer set of one park with one pinned key set.
type pinnedPeer struct{ ks *parkkey.KeySet }

func (p pinnedPeer) PeerKey(park, kid string) (ed25519.PublicKey, bool) {
	if park != p.ks.Park() {
		return nil, false
	}
	if k, ok := p.ks.Lookup(kid); ok {
		return k, true
	}
	return nil, true
}

func (pinnedPeer) RefreshKeys(string) bool { return false }

// signPayload signs raw payload bytes under header with key.
func signPayload(header map[string]any, payload []byte, key ed25519.PrivateKey) string {
	input := b64(header) + "." + b64raw(payload)
	return input + "." + b64raw(ed25519.Sign(key, []byte(input)))
}

// wellFormed is an independent reading of what a verifier may accept: the
// issuer and audience (one, exactly self), sub and role for park-local
// tokens, scope for federation ones, a jti, numeric exp and iat (nbf
// optional) taken as whole seconds, current at now within the leeway, and
// a lifetime within the kind's maximum. It returns why the claims are bad,
// "" when they are good.
func wellFormed(payload []byte, federation bool, iss, self string, now time.Time) string {
	var c struct {
		Iss, Sub, Jti, Role, Scope *string
		Aud                        json.RawMessage
		Exp, Iat, Nbf              *float64
	}
	if json.NewDecoder(bytes.NewReader(payload)).Decode(&c) != nil {
		return "decode"
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if str(c.Iss) != iss || str(c.Jti) == "" {
		return "iss or jti"
	}
	if federation {
		if str(c.Scope) != parktoken.ScopeSearch {
			return "scope"
		}
	} else if str(c.Sub) == "" || !parktoken.Role(str(c.Role)).Valid() {
		return "sub or role"
	}
	var one string
	var list []string
	if json.Unmarshal(c.Aud, &one) != nil {
		if json.Unmarshal(c.Aud, &list) != nil || len(list) != 1 {
			return "aud"
		}
		one = list[0]
	}
	if one != self {
		return "aud"
	}
	secs := func(p *float64) (float64, bool) {
		if p == nil || *p < 0 || *p >= 1<<62 {
			return 0, false
		}
		return math.Floor(*p), true
	}
	e, okE := secs(c.Exp)
	i, okI := secs(c.Iat)
	if !okE || !okI {
		return "exp or iat"
	}
	leeway, t := parktoken.Leeway.Seconds(), float64(now.Unix())
	if t >= e+leeway || t < i-leeway {
		return "time"
	}
	if c.Nbf != nil {
		n, ok := secs(c.Nbf)
		if !ok || t < n-leeway {
			return "nbf"
		}
	}
	maxTTL := parktoken.MaxTTL
	if federation {
		maxTTL = parktoken.MaxFederationTTL
	}
	if e-i > maxTTL.Seconds() {
		return "lifetime"
	}
	return ""
}
