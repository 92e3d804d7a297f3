package parktoken_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

const park = "xian-hitech"

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// fixedKeys returns an in-memory key set with a key derived from seed, so
// fuzz workers, which each run the test's setup, share it.
func fixedKeys(tb testing.TB, parkID string, seed byte) *parkkey.KeySet {
	tb.Helper()
	ks, err := parkkey.FromKeys(parkID, ed25519.NewKeyFromSeed(bytesOf(seed, ed25519.SeedSize)))
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b + byte(i)
	}
	return out
}

func verifierAt(ks *parkkey.KeySet, now time.Time) *parktoken.Verifier {
	return parktoken.NewVerifier(parktoken.StaticKeys(ks), parktoken.WithClock(func() time.Time { return now }))
}

func issue(tb testing.TB, ks *parkkey.KeySet, role parktoken.Role, ttl time.Duration, now time.Time) string {
	tb.Helper()
	tok, err := parktoken.Issue(ks, ks.Park(), "li.wei", role, ttl, now)
	if err != nil {
		tb.Fatalf("Issue: %v", err)
	}
	return tok
}

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64raw(b)
}

func b64raw(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// validClaims are claims Verify accepts at t0 for park.
func validClaims() map[string]any {
	return map[string]any{
		"iss": park, "aud": park, "sub": "li.wei", "role": "editor",
		"iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "j1",
	}
}

// signRaw signs header and claims with key, by hand, so tests control
// every byte.
func signRaw(header, claims map[string]any, key ed25519.PrivateKey) string {
	input := b64(header) + "." + b64(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}

func TestIssueVerify(t *testing.T) {
	ks := fixedKeys(t, park, 1)
	tok := issue(t, ks, parktoken.Editor, time.Hour, t0)
	c, err := verifierAt(ks, t0).Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v (reason %s)", err, parktoken.Reason(err))
	}
	want := parktoken.Claims{
		Park: park, Subject: "li.wei", Role: parktoken.Editor, ID: c.ID, KeyID: ks.Current().ID,
		IssuedAt: t0, NotBefore: t0, ExpiresAt: t0.Add(time.Hour),
	}
	if c.ID == "" || !c.IssuedAt.Equal(want.IssuedAt) || !c.NotBefore.Equal(want.NotBefore) || !c.ExpiresAt.Equal(want.ExpiresAt) ||
		c.Park != want.Park || c.Subject != want.Subject || c.Role != want.Role || c.KeyID != want.KeyID {
		t.Errorf("claims = %+v, want %+v", *c, want)
	}

	// The header and payload are what the brief says they are.
	parts := strings.Split(tok, ".")
	var hdr, payload map[string]any
	decode(t, parts[0], &hdr)
	decode(t, parts[1], &payload)
	if hdr["alg"] != "EdDSA" || hdr["kid"] != ks.Current().ID || hdr["typ"] != parktoken.TokenType {
		t.Errorf("header = %v", hdr)
	}
	for _, k := range []string{"iss", "aud", "sub", "role", "iat", "nbf", "exp", "jti"} {
		if _, ok := payload[k]; !ok {
			t.Errorf("payload lacks %s: %v", k, payload)
		}
	}
	if payload["iss"] != park || payload["aud"] != park {
		t.Errorf("iss/aud = %v/%v", payload["iss"], payload["aud"])
	}

	// Each token gets its own jti.
	c2, err := verifierAt(ks, t0).Verify(issue(t, ks, parktoken.Editor, time.Hour, t0))
	if err != nil || c2.ID == c.ID {
		t.Errorf("second token: jti %q vs %q, err %v", c2.ID, c.ID, err)
	}
}

func decode(tb testing.TB, seg string, v any) {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatal(err)
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	ks := fixedKeys(t, park, 1)
	tests := []struct {
		name, park, sub string
		role            parktoken.Role
		ttl             time.Duration
		field           string
	}{
		{"other park", "chengdu-tspp", "li.wei", parktoken.Viewer, time.Hour, "park"},
		{"no sub", park, "", parktoken.Viewer, time.Hour, "sub"},
		{"control in sub", park, "a\nb", parktoken.Viewer, time.Hour, "sub"},
		{"long sub", park, strings.Repeat("x", 257), parktoken.Viewer, time.Hour, "sub"},
		{"unknown role", park, "li.wei", "root", time.Hour, "role"},
		{"zero ttl", park, "li.wei", parktoken.Viewer, 0, "ttl"},
		{"negative ttl", park, "li.wei", parktoken.Viewer, -time.Hour, "ttl"},
		{"ttl too long", park, "li.wei", parktoken.Viewer, parktoken.MaxTTL + time.Second, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parktoken.Issue(ks, tt.park, tt.sub, tt.role, tt.ttl, t0)
			var ae *apierror.Error
			if !errors.As(err, &ae) || ae.Code != apierror.Invalid || ae.Field != tt.field {
				t.Errorf("err = %v, want Invalid on %s", err, tt.field)
			}
		})
	}
}

func TestRoleAllows(t *testing.T) {
	tests := []struct {
		have, need parktoken.Role
		want       bool
	}{
		{parktoken.Admin, parktoken.Admin, true},
		{parktoken.Admin, parktoken.Editor, true},
		{parktoken.Admin, parktoken.Viewer, true},
		{parktoken.Editor, parktoken.Admin, false},
		{parktoken.Editor, parktoken.Editor, true},
		{parktoken.Editor, parktoken.Viewer, true},
		{parktoken.Viewer, parktoken.Admin, false},
		{parktoken.Viewer, parktoken.Editor, false},
		{parktoken.Viewer, parktoken.Viewer, true},
		{"", parktoken.Viewer, false},
		{"root", parktoken.Viewer, false},
		{parktoken.Admin, "root", false},
		{parktoken.Admin, "", false},
	}
	for _, tt := range tests {
		if got := tt.have.Allows(tt.need); got != tt.want {
			t.Errorf("%q.Allows(%q) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
	for _, s := range []string{"viewer", "editor", "admin"} {
		if r, err := parktoken.ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	if _, err := parktoken.ParseRole("Admin"); !apierror.Is(err, apierror.Invalid) {
		t.Errorf("ParseRole(Admin) err = %v, want Invalid", err)
	}
}

func TestRequire(t *testing.T) {
	ks := fixedKeys(t, park, 1)
	c, err := verifierAt(ks, t0).Verify(issue(t, ks, parktoken.Viewer, time.Hour, t0))
	if err != nil {
		t.Fatal(err)
	}
	if err := parktoken.Require(c, parktoken.Viewer); err != nil {
		t.Errorf("Require(viewer) = %v", err)
	}
	// Wrong role: the caller is known, so 403, reason "role".
	err = parktoken.Require(c, parktoken.Editor)
	if !apierror.Is(err, apierror.Forbidden) || parktoken.Reason(err) != parktoken.ReasonRole {
		t.Errorf("Require(editor) by viewer = %v (reason %q), want Forbidden/role", err, parktoken.Reason(err))
	}
	if err := parktoken.Require(nil, parktoken.Viewer); !apierror.Is(err, apierror.Forbidden) {
		t.Errorf("Require(nil claims) = %v, want Forbidden", err)
	}
}

// TestVerifyAttacks is the list of tokens an attacker might try. Every one
// must be refused with Unauthorized, the same generic message, and the
// reason that tells the operator what happened.
func TestVerifyAttacks(t *testing.T) {
	ks := fixedKeys(t, park, 1)
	kid := ks.Current().ID
	priv := ks.Current().Signer().(ed25519.PrivateKey)
	pub := ks.Current().PublicKey
	otherPark := fixedKeys(t, "chengdu-tspp", 2)
	otherPriv := otherPark.Current().Signer().(ed25519.PrivateKey)
	hdr := map[string]any{"alg": "EdDSA", "typ": parktoken.TokenType, "kid": kid}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for kk, vv := range m {
			out[kk] = vv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	valid := issue(t, ks, parktoken.Editor, time.Hour, t0)
	parts := strings.Split(valid, ".")

	// HS256 keyed with the public key: the classic algorithm confusion.
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(validClaims()))
	hs.Header["kid"] = kid
	hs.Header["typ"] = parktoken.TokenType
	hsToken, err := hs.SignedString([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	// The same with the PEM text of the public key as the secret.
	hsPEM := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(validClaims()))
	hsPEM.Header["kid"] = kid
	hsPEMToken, _ := hsPEM.SignedString([]byte(base64.StdEncoding.EncodeToString(pub)))

	// Tamper: promote the role without re-signing.
	promoted := b64(with(validClaims(), "role", "admin"))
	var validPayload map[string]any
	decode(t, parts[1], &validPayload)

	// A signature whose last base64url character carries non-zero
	// padding bits decodes to the same bytes; it must still be refused.
	sig := parts[2]
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	nonCanonical := parts[0] + "." + parts[1] + "." + sig[:len(sig)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])

	tests := []struct {
		name   string
		token  string
		now    time.Time
		reason string
	}{
		{"no token", "", t0, parktoken.ReasonMissing},
		{"garbage", "not-a-jwt", t0, parktoken.ReasonMalformed},
		{"two segments", parts[0] + "." + parts[1], t0, parktoken.ReasonMalformed},
		{"four segments", valid + ".x", t0, parktoken.ReasonMalformed},
		{"padded header", parts[0] + "=." + parts[1] + "." + parts[2], t0, parktoken.ReasonMalformed},
		{"non-canonical signature", nonCanonical, t0, parktoken.ReasonMalformed},
		{"too long", strings.Repeat("a", parktoken.MaxTokenSize+1), t0, parktoken.ReasonMalformed},
		{"expired", valid, t0.Add(time.Hour + parktoken.Leeway + time.Second), parktoken.ReasonExpired},
		{"not yet valid", issue(t, ks, parktoken.Editor, time.Hour, t0.Add(time.Hour)), t0, parktoken.ReasonNotYetValid},
		{"nbf in future", signRaw(hdr, with(validClaims(), "nbf", t0.Add(time.Minute).Unix()), priv), t0, parktoken.ReasonNotYetValid},
		{"iat in future", signRaw(hdr, with(validClaims(), "iat", t0.Add(time.Minute).Unix()), priv), t0, parktoken.ReasonNotYetValid},
		{"another park's key", issue(t, otherPark, parktoken.Admin, time.Hour, t0), t0, parktoken.ReasonKid},
		{"another park's key claiming our kid", signRaw(hdr, validClaims(), otherPriv), t0, parktoken.ReasonSignature},
		{"alg none", b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(validClaims()) + ".", t0, parktoken.ReasonAlg},
		{"alg none with kid", b64(with(hdr, "alg", "none")) + "." + b64(validClaims()) + ".", t0, parktoken.ReasonAlg},
		{"alg None", b64(with(hdr, "alg", "None")) + "." + b64(validClaims()) + ".", t0, parktoken.ReasonAlg},
		{"no alg", signRaw(with(hdr, "alg", nil), validClaims(), priv), t0, parktoken.ReasonAlg},
		{"HS256 keyed with public key", hsToken, t0, parktoken.ReasonAlg},
		{"HS256 keyed with encoded public key", hsPEMToken, t0, parktoken.ReasonAlg},
		{"RS256 header", b64(with(hdr, "alg", "RS256")) + "." + parts[1] + "." + parts[2], t0, parktoken.ReasonAlg},
		{"unknown kid", signRaw(with(hdr, "kid", "k1"), validClaims(), priv), t0, parktoken.ReasonKid},
		{"no kid", signRaw(with(hdr, "kid", nil), validClaims(), priv), t0, parktoken.ReasonKid},
		{"empty kid", signRaw(with(hdr, "kid", ""), validClaims(), priv), t0, parktoken.ReasonKid},
		{"crit header", signRaw(with(hdr, "crit", []string{"exp"}), validClaims(), priv), t0, parktoken.ReasonMalformed},
		{"wrong aud", signRaw(hdr, with(validClaims(), "aud", "chengdu-tspp"), priv), t0, parktoken.ReasonAudience},
		{"no aud", signRaw(hdr, with(validClaims(), "aud", nil), priv), t0, parktoken.ReasonAudience},
		{"wrong iss", signRaw(hdr, with(validClaims(), "iss", "chengdu-tspp"), priv), t0, parktoken.ReasonIssuer},
		{"no iss", signRaw(hdr, with(validClaims(), "iss", nil), priv), t0, parktoken.ReasonIssuer},
		{"wrong iss and aud, as a federation token", signRaw(hdr, with(with(validClaims(), "iss", "chengdu-tspp"), "aud", "chengdu-tspp"), priv), t0, parktoken.ReasonIssuer},
		{"no exp", signRaw(hdr, with(validClaims(), "exp", nil), priv), t0, parktoken.ReasonClaims},
		{"no sub", signRaw(hdr, with(validClaims(), "sub", nil), priv), t0, parktoken.ReasonClaims},
		{"no jti", signRaw(hdr, with(validClaims(), "jti", nil), priv), t0, parktoken.ReasonClaims},
		{"no iat", signRaw(hdr, with(validClaims(), "iat", nil), priv), t0, parktoken.ReasonClaims},
		{"exp as string", signRaw(hdr, with(validClaims(), "exp", "tomorrow"), priv), t0, parktoken.ReasonMalformed},
		{"exp as numeric string", signRaw(hdr, with(validClaims(), "exp", strconv.FormatInt(t0.Add(time.Hour).Unix(), 10)), priv), t0, parktoken.ReasonMalformed},
		{"iat as string", signRaw(hdr, with(validClaims(), "iat", "today"), priv), t0, parktoken.ReasonMalformed},
		{"exp null", signRaw(hdr, with(validClaims(), "exp", json.RawMessage("null")), priv), t0, parktoken.ReasonClaims},
		{"nbf beyond int64", signRaw(hdr, with(validClaims(), "nbf", 1e300), priv), t0, parktoken.ReasonMalformed},
		{"iat before 1970", signRaw(hdr, with(validClaims(), "iat", -1), priv), t0, parktoken.ReasonMalformed},
		{"aud list with the park and another", signRaw(hdr, with(validClaims(), "aud", []string{park, "chengdu-tspp"}), priv), t0, parktoken.ReasonAudience},
		{"aud list with the park twice", signRaw(hdr, with(validClaims(), "aud", []string{park, park}), priv), t0, parktoken.ReasonAudience},
		{"ten years, signed with the park's key", signRaw(hdr, with(validClaims(), "exp", t0.AddDate(10, 0, 0).Unix()), priv), t0, parktoken.ReasonLifetime},
		{"366 days and a second", signRaw(hdr, with(validClaims(), "exp", t0.Add(parktoken.MaxTTL+time.Second).Unix()), priv), t0, parktoken.ReasonLifetime},
		{"unknown role", signRaw(hdr, with(validClaims(), "role", "root"), priv), t0, parktoken.ReasonRole},
		{"no role", signRaw(hdr, with(validClaims(), "role", nil), priv), t0, parktoken.ReasonRole},
		{"typ JWT", signRaw(with(hdr, "typ", "JWT"), validClaims(), priv), t0, parktoken.ReasonType},
		{"no typ", signRaw(with(hdr, "typ", nil), validClaims(), priv), t0, parktoken.ReasonType},
		{"promoted role", parts[0] + "." + promoted + "." + parts[2], t0, parktoken.ReasonSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(issue(t, ks, parktoken.Viewer, time.Hour, t0), ".")[2], t0, parktoken.ReasonSignature},
		{"empty signature", parts[0] + "." + parts[1] + ".", t0, parktoken.ReasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := verifierAt(ks, tt.now).Verify(tt.token)
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", *c)
			}
			if c != nil {
				t.Error("Verify returned claims with an error")
			}
			assertUnauthorized(t, err, tt.reason)
		})
	}

	// Sanity: the valid token passes at the edges of the leeway.
	for _, now := range []time.Time{t0.Add(-parktoken.Leeway + time.Second), t0.Add(time.Hour + parktoken.Leeway - time.Second)} {
		if _, err := verifierAt(ks, now).Verify(valid); err != nil {
			t.Errorf("valid token at %v: %v (%s)", now, err, parktoken.Reason(err))
		}
	}
	if _, err := verifierAt(ks, t0).Verify(signRaw(hdr, validClaims(), priv)); err != nil {
		t.Errorf("hand-made valid token refused: %v (%s)", err, parktoken.Reason(err))
	}
	for name, claims := range map[string]map[string]any{
		"aud as a list of one": with(validClaims(), "aud", []string{park}),
		"366 days exactly":     with(validClaims(), "exp", t0.Add(parktoken.MaxTTL).Unix()),
	} {
		if _, err := verifierAt(ks, t0).Verify(signRaw(hdr, claims, priv)); err != nil {
			t.Errorf("%s refused: %v (%s)", name, err, parktoken.Reason(err))
		}
	}
}

func assertUnauthorized(tb testing.TB, err error, reason string) {
	tb.Helper()
	var ae *apierror.Error
	if !errors.As(err, &ae) || ae.Code != apierror.Unauthorized {
		tb.Errorf("err = %v, want an *apierror.Error with code Unauthorized", err)
		return
	}
	if got := parktoken.Reason(err); got != reason {
		tb.Errorf("Reason = %q, want %q (err %v)", got, reason, err)
	}
	// The caller learns nothing about why.
	pub := apierror.Public(err)
	if pub.Message != "missing or invalid access token" || pub.Field != "" {
		tb.Errorf("public error = %+v, want the generic message", pub)
	}
	if err.Error() != pub.Error() {
		tb.Errorf("Error() = %q leaks more than the public error %q", err.Error(), pub.Error())
	}
}

func TestVerifyAfterRotation(t *testing.T) {
	dir := t.TempDir()
	first, err := parkkey.Init(dir, park, parkkey.WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	old := issue(t, first, parktoken.Editor, 5*time.Minute, t0)

	t1 := t0.Add(time.Minute)
	now := t1
	r, err := parkkey.NewReloader(dir, time.Nanosecond, parkkey.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	v := parktoken.NewVerifier(r.KeySet, parktoken.WithClock(func() time.Time { return now }))
	if _, err := v.Verify(old); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	second, err := parkkey.Rotate(dir, t1)
	if err != nil {
		t.Fatal(err)
	}
	now = t1.Add(time.Second)
	if _, err := v.Verify(old); err != nil {
		t.Errorf("token signed by the previous key refused after rotation: %v (%s)", err, parktoken.Reason(err))
	}
	fresh := issue(t, second, parktoken.Editor, time.Hour, now)
	c, err := v.Verify(fresh)
	if err != nil || c.KeyID != second.Current().ID {
		t.Errorf("token signed by the new key: %v, %v", c, err)
	}
	if _, err := v.Verify(issue(t, r.KeySet(), parktoken.Viewer, time.Hour, now)); err != nil {
		t.Errorf("token issued from the reloaded set: %v", err)
	}

	// After the grace period the previous key is gone: its tokens are
	// refused for their kid even if they had not expired.
	long := issue(t, first, parktoken.Editor, 24*time.Hour, t0)
	now = t1.Add(parkkey.DefaultGrace)
	_, err = v.Verify(long)
	assertUnauthorized(t, err, parktoken.ReasonKid)
	if _, err := v.Verify(fresh); err != nil {
		t.Errorf("new key's token after grace: %v", err)
	}
}

func TestVerifierWithoutKeys(t *testing.T) {
	v := parktoken.NewVerifier(func() *parkkey.KeySet { return nil })
	_, err := v.Verify("a.b.c")
	if !apierror.Is(err, apierror.Unavailable) || parktoken.Reason(err) != parktoken.ReasonKeys {
		t.Errorf("err = %v (%s), want Unavailable/keys", err, parktoken.Reason(err))
	}
}

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    string
		reason  string
	}{
		{"bearer", []string{"Bearer abc.def.ghi"}, "abc.def.ghi", ""},
		{"scheme case", []string{"bearer abc.def.ghi"}, "abc.def.ghi", ""},
		{"extra spaces", []string{"  Bearer   abc.def.ghi  "}, "abc.def.ghi", ""},
		{"none", nil, "", parktoken.ReasonMissing},
		{"empty", []string{""}, "", parktoken.ReasonMissing},
		{"bearer only", []string{"Bearer"}, "", parktoken.ReasonMissing},
		{"bearer and space", []string{"Bearer "}, "", parktoken.ReasonMissing},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, "", parktoken.ReasonMalformed},
		{"no scheme", []string{"abc.def.ghi"}, "", parktoken.ReasonMalformed},
		{"two tokens", []string{"Bearer a.b.c d.e.f"}, "", parktoken.ReasonMalformed},
		{"two headers", []string{"Bearer a.b.c", "Bearer d.e.f"}, "", parktoken.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/projects", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := parktoken.FromRequest(r)
			if tt.reason == "" {
				if err != nil || got != tt.want {
					t.Errorf("FromRequest = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if got != "" {
				t.Errorf("FromRequest returned %q with an error", got)
			}
			assertUnauthorized(t, err, tt.reason)
		})
	}
}

func TestErrorLogValue(t *testing.T) {
	ks := fixedKeys(t, park, 1)
	_, err := verifierAt(ks, t0.Add(48*time.Hour)).Verify(issue(t, ks, parktoken.Viewer, time.Hour, t0))
	var te *parktoken.Error
	if !errors.As(err, &te) {
		t.Fatalf("err %T is not a *parktoken.Error", err)
	}
	lv := te.LogValue().String()
	if !strings.Contains(lv, "expired") || !strings.Contains(lv, "unauthorized") {
		t.Errorf("LogValue = %s, want code and reason", lv)
	}
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Error("the jwt cause is not reachable with errors.Is")
	}
}
