package parkkey_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func at(t time.Time) parkkey.Option { return parkkey.WithClock(func() time.Time { return t }) }

func initKeys(tb testing.TB, park string) (string, *parkkey.KeySet) {
	tb.Helper()
	dir := tb.TempDir()
	ks, err := parkkey.Init(dir, park, at(t0))
	if err != nil {
		tb.Fatalf("Init: %v", err)
	}
	return dir, ks
}

// independentThumbprint computes RFC 7638 the long way: the required
// members as a JSON object (encoding/json sorts map keys and adds no
// whitespace), hashed with SHA-256, base64url without padding.
func independentThumbprint(pub ed25519.PublicKey) string {
	canonical, err := json.Marshal(map[string]string{
		"kty": "OKP",
		"crv": "Ed25519",
		"x":   base64.RawURLEncoding.EncodeToString(pub),
	})
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestThumbprint(t *testing.T) {
	// RFC 8037 appendix A.2 public key. Its appendix A.3 gives the
	// thumbprint of this key.
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	pub := ed25519.PublicKey(x)
	const rfc8037 = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
	if got := parkkey.Thumbprint(pub); got != rfc8037 {
		t.Errorf("Thumbprint(RFC 8037 A.2 key) = %s, want %s (RFC 8037 A.3)", got, rfc8037)
	}
	if got, want := parkkey.Thumbprint(pub), independentThumbprint(pub); got != want {
		t.Errorf("Thumbprint = %s, independent computation = %s", got, want)
	}
	if parkkey.Thumbprint(pub) != parkkey.Thumbprint(append(ed25519.PublicKey(nil), pub...)) {
		t.Error("Thumbprint is not deterministic")
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if parkkey.Thumbprint(other) == parkkey.Thumbprint(pub) {
		t.Error("different keys share a thumbprint")
	}
	if got, want := parkkey.Thumbprint(other), independentThumbprint(other); got != want {
		t.Errorf("Thumbprint(random) = %s, independent = %s", got, want)
	}
}

func TestInitLayout(t *testing.T) {
	dir, ks := initKeys(t, "xian-hitech")
	if ks.Park() != "xian-hitech" {
		t.Errorf("Park = %q", ks.Park())
	}
	cur := ks.Current()
	if cur.ID != parkkey.Thumbprint(cur.PublicKey) || cur.ID != independentThumbprint(cur.PublicKey) {
		t.Errorf("kid %s is not the thumbprint of the key", cur.ID)
	}
	if !cur.CreatedAt.Equal(t0) {
		t.Errorf("CreatedAt = %v, want %v", cur.CreatedAt, t0)
	}

	keys := parkkey.Dir(dir)
	fi, err := os.Stat(keys)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("key directory mode = %o, want 700", got)
	}
	entries, err := os.ReadDir(keys)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Name())
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %o, want 600", e.Name(), got)
		}
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}

	// The private key is PKCS #8 PEM and is the key set's current key.
	b, err := os.ReadFile(filepath.Join(keys, cur.ID+".key"))
	if err != nil {
		t.Fatalf("current key file: %v (files %v)", err, names)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file is not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("ParsePKCS8PrivateKey: %v", err)
	}
	if !k.(ed25519.PrivateKey).Public().(ed25519.PublicKey).Equal(cur.PublicKey) {
		t.Error("key file holds another key")
	}
}

func TestInitRefusesExisting(t *testing.T) {
	dir, ks := initKeys(t, "xian-hitech")
	_, err := parkkey.Init(dir, "xian-hitech")
	if !apierror.Is(err, apierror.Conflict) {
		t.Fatalf("second Init: err = %v, want Conflict", err)
	}
	again, err := parkkey.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Current().ID != ks.Current().ID {
		t.Error("second Init replaced the key")
	}
}

func TestInitRejectsBadPark(t *testing.T) {
	for _, park := range []string{"", "Xian", "a", "bad park", "../x"} {
		_, err := parkkey.Init(t.TempDir(), park)
		if !apierror.Is(err, apierror.Invalid) {
			t.Errorf("Init(park %q): err = %v, want Invalid", park, err)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := parkkey.Load(t.TempDir())
	if !apierror.Is(err, apierror.NotFound) {
		t.Fatalf("Load(empty dir): err = %v, want NotFound", err)
	}
	_, err = parkkey.Rotate(t.TempDir(), t0)
	if !apierror.Is(err, apierror.NotFound) {
		t.Fatalf("Rotate(empty dir): err = %v, want NotFound", err)
	}
}

func TestLoadRejectsSwappedKeyFile(t *testing.T) {
	dir, ks := initKeys(t, "xian-hitech")
	_, other, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKCS8PrivateKey(other)
	path := filepath.Join(parkkey.Dir(dir), ks.Current().ID+".key")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parkkey.Load(dir); err == nil {
		t.Fatal("Load accepted a key file holding a key other than its kid")
	}
}

func TestSigningKeyNeverPrintsPrivateKey(t *testing.T) {
	_, ks := initKeys(t, "xian-hitech")
	cur := ks.Current()
	priv := cur.Signer().(ed25519.PrivateKey)
	secrets := []string{
		fmt.Sprintf("%x", []byte(priv.Seed())),
		fmt.Sprintf("%v", []byte(priv.Seed())),
		base64.StdEncoding.EncodeToString(priv.Seed()),
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out := fmt.Sprintf(format, cur)
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s of the signing key prints the private key", format)
			}
		}
		if !strings.Contains(out, cur.ID) {
			t.Errorf("%s = %q, want the kid", format, out)
		}
	}
}

func TestRotate(t *testing.T) {
	dir, first := initKeys(t, "xian-hitech")
	t1 := t0.Add(time.Hour)
	second, err := parkkey.Rotate(dir, t1)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	oldID, newID := first.Current().ID, second.Current().ID
	if oldID == newID {
		t.Fatal("Rotate kept the same current key")
	}
	if second.Park() != "xian-hitech" {
		t.Errorf("Park after rotation = %q", second.Park())
	}

	pub := second.Public()
	if len(pub) != 2 || pub[0].ID != newID || pub[1].ID != oldID {
		t.Fatalf("Public = %v, want [new, old]", ids(pub))
	}
	if pub[0].Retired || !pub[1].Retired {
		t.Error("Retired flags wrong")
	}
	if !pub[1].RetiredAt.Equal(t1) || !pub[1].PublishedUntil.Equal(t1.Add(parkkey.DefaultGrace)) {
		t.Errorf("retired key: retired_at %v, published_until %v", pub[1].RetiredAt, pub[1].PublishedUntil)
	}
	if k, ok := second.Lookup(oldID); !ok || !k.Equal(first.Current().PublicKey) {
		t.Error("previous key not published after rotation")
	}

	// The retired key keeps only its public half, with mode 0600.
	keys := parkkey.Dir(dir)
	if _, err := os.Stat(filepath.Join(keys, oldID+".key")); !os.IsNotExist(err) {
		t.Errorf("retired private key still on disk (stat err %v)", err)
	}
	for _, name := range []string{oldID + ".pub", newID + ".key", "keyset.json"} {
		fi, err := os.Stat(filepath.Join(keys, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %o, want 600", name, fi.Mode().Perm())
		}
	}

	// Within the grace period Load still publishes it; after, it does not.
	within, err := parkkey.Load(dir, at(t1.Add(parkkey.DefaultGrace-time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := within.Lookup(oldID); !ok {
		t.Error("Load within grace dropped the previous key")
	}
	after, err := parkkey.Load(dir, at(t1.Add(parkkey.DefaultGrace)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := after.Lookup(oldID); ok || len(after.Public()) != 1 {
		t.Errorf("Load after grace still publishes %v", ids(after.Public()))
	}
	// Load never writes: the file is still there until the next rotation.
	if _, err := os.Stat(filepath.Join(keys, oldID+".pub")); err != nil {
		t.Errorf("Load deleted a file: %v", err)
	}

	// A rotation after the grace period prunes it from disk.
	t2 := t1.Add(parkkey.DefaultGrace + time.Minute)
	third, err := parkkey.Rotate(dir, t2)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(third.Public()); len(got) != 2 || got[0] != third.Current().ID || got[1] != newID {
		t.Errorf("Public after second rotation = %v, want [%s…, %s]", got, third.Current().ID, newID)
	}
	if _, err := os.Stat(filepath.Join(keys, oldID+".pub")); !os.IsNotExist(err) {
		t.Errorf("pruned key still on disk (stat err %v)", err)
	}
}

func TestRotateTwiceWithinGraceKeepsBoth(t *testing.T) {
	dir, first := initKeys(t, "xian-hitech")
	second, err := parkkey.Rotate(dir, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	third, err := parkkey.Rotate(dir, t0.Add(2*time.Minute), parkkey.WithGrace(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{third.Current().ID, second.Current().ID, first.Current().ID}
	if got := ids(third.Public()); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Public = %v, want %v", got, want)
	}
	if until := third.Public()[1].PublishedUntil; !until.Equal(t0.Add(2*time.Minute + time.Hour)) {
		t.Errorf("WithGrace: published_until = %v", until)
	}
}

func TestRetainUntilOutlastsGrace(t *testing.T) {
	dir, first := initKeys(t, "xian-hitech")
	kid := first.Current().ID
	long := t0.Add(30 * 24 * time.Hour)
	if err := parkkey.RetainUntil(dir, kid, long); err != nil {
		t.Fatal(err)
	}
	if err := parkkey.RetainUntil(dir, kid, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := parkkey.Rotate(dir, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ks, err := parkkey.Load(dir, at(long.Add(-time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.Lookup(kid); !ok {
		t.Error("key retired before the tokens it signed expired")
	}
	ks, err = parkkey.Load(dir, at(long))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.Lookup(kid); ok {
		t.Error("key still published after its retention")
	}
	if err := parkkey.RetainUntil(dir, "nope", long); !apierror.Is(err, apierror.NotFound) {
		t.Errorf("RetainUntil(unknown kid) = %v, want NotFound", err)
	}
}

func TestReloaderPicksUpRotation(t *testing.T) {
	dir, first := initKeys(t, "xian-hitech")
	now := t0
	clock := func() time.Time { return now }
	r, err := parkkey.NewReloader(dir, time.Second, parkkey.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	if r.KeySet().Current().ID != first.Current().ID {
		t.Fatal("Reloader started with another key")
	}
	second, err := parkkey.Rotate(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if got := r.KeySet().Current().ID; got != second.Current().ID {
		t.Errorf("after rotation, Reloader current = %s, want %s", got, second.Current().ID)
	}
	if _, ok := r.KeySet().Lookup(first.Current().ID); !ok {
		t.Error("Reloader dropped the previous key within grace")
	}
	now = now.Add(parkkey.DefaultGrace)
	if _, ok := r.KeySet().Lookup(first.Current().ID); ok {
		t.Error("Reloader still publishes the previous key after grace")
	}
	if r.Err() != nil {
		t.Errorf("Err = %v", r.Err())
	}
}

func TestJWKSRoundTrip(t *testing.T) {
	dir, _ := initKeys(t, "xian-hitech")
	ks, err := parkkey.Rotate(dir, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ks.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var generic struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	if len(generic.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(generic.Keys))
	}
	for _, k := range generic.Keys {
		if len(k) != 6 || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" {
			t.Errorf("JWK = %v", k)
		}
		if _, ok := k["d"]; ok {
			t.Error("JWKS carries private key material")
		}
	}
	got, err := parkkey.ParseJWKS(b)
	if err != nil {
		t.Fatalf("ParseJWKS(own JWKS): %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("ParseJWKS gave %d keys", len(got))
	}
	for _, k := range ks.Public() {
		if !got[k.ID].Equal(k.PublicKey) {
			t.Errorf("key %s did not round-trip", k.ID)
		}
	}
}

func TestParseJWKSRejects(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	x := base64.RawURLEncoding.EncodeToString(pub)
	kid := parkkey.Thumbprint(pub)
	other, _, _ := ed25519.GenerateKey(nil)
	one := func(members string) string { return `{"keys":[{` + members + `}]}` }
	tests := []struct {
		name, body, field string
	}{
		{"not JSON", `{`, "keys"},
		{"empty", `{"keys":[]}`, "keys"},
		{"no keys member", `{}`, "keys"},
		{"RSA", one(`"kty":"RSA","n":"AQAB","e":"AQAB","kid":"x"`), "keys[0].kty"},
		{"EC", one(`"kty":"EC","crv":"P-256","x":"` + x + `","kid":"` + kid + `"`), "keys[0].kty"},
		{"X25519", one(`"kty":"OKP","crv":"X25519","x":"` + x + `","kid":"` + kid + `"`), "keys[0].crv"},
		{"private", one(`"kty":"OKP","crv":"Ed25519","x":"` + x + `","d":"` + base64.RawURLEncoding.EncodeToString(priv.Seed()) + `","kid":"` + kid + `"`), "keys[0].d"},
		{"wrong alg", one(`"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"` + kid + `","alg":"HS256"`), "keys[0].alg"},
		{"enc use", one(`"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"` + kid + `","use":"enc"`), "keys[0].use"},
		{"short x", one(`"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"` + kid + `"`), "keys[0].x"},
		{"padded x", one(`"kty":"OKP","crv":"Ed25519","x":"` + x + `=","kid":"` + kid + `"`), "keys[0].x"},
		{"no kid", one(`"kty":"OKP","crv":"Ed25519","x":"` + x + `"`), "keys[0].kid"},
		{"kid of other key", one(`"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"` + parkkey.Thumbprint(other) + `"`), "keys[0].kid"},
		{"made-up kid", one(`"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"current"`), "keys[0].kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parkkey.ParseJWKS([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseJWKS accepted %s: %v", tt.body, got)
			}
			var ae *apierror.Error
			if !apierror.Is(err, apierror.Invalid) || !asAPI(err, &ae) || ae.Field != tt.field {
				t.Errorf("err = %v, want Invalid on field %s", err, tt.field)
			}
			if strings.Contains(err.Error(), base64.RawURLEncoding.EncodeToString(priv.Seed())) {
				t.Error("error echoes private key material")
			}
		})
	}

	ok := one(`"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"` + kid + `"`)
	if keys, err := parkkey.ParseJWKS([]byte(ok)); err != nil || !keys[kid].Equal(pub) {
		t.Errorf("ParseJWKS(minimal valid set) = %v, %v", keys, err)
	}
}

func asAPI(err error, target **apierror.Error) bool {
	e, ok := err.(*apierror.Error)
	*target = e
	return ok
}

func ids(keys []parkkey.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

func TestConcurrentRotateAndLoad(t *testing.T) {
	dir, _ := initKeys(t, "xian-hitech")
	const n = 8
	errs := make(chan error, 2*n)
	for i := range n {
		go func() {
			_, err := parkkey.Rotate(dir, t0.Add(time.Duration(i)*time.Second))
			errs <- err
		}()
		go func() {
			_, err := parkkey.Load(dir, at(t0))
			errs <- err
		}()
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Rotate/Load: %v", err)
		}
	}
	ks, err := parkkey.Load(dir, at(t0))
	if err != nil {
		t.Fatal(err)
	}
	// No rotation was lost: the first key and all n rotations are published.
	if got := len(ks.Public()); got != n+1 {
		t.Errorf("after %d concurrent rotations %d keys are published, want %d", n, got, n+1)
	}
}

func TestReloaderKeepsLastGoodSet(t *testing.T) {
	dir, first := initKeys(t, "xian-hitech")
	now := t0
	r, err := parkkey.NewReloader(dir, time.Second, parkkey.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parkkey.Dir(dir), "keyset.json"), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if got := r.KeySet(); got == nil || got.Current().ID != first.Current().ID {
		t.Errorf("Reloader dropped its last good key set on a broken manifest")
	}
	if r.Err() == nil {
		t.Error("Err = nil after a failed reload")
	}
}

func TestFromKeys(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	old, _, _ := ed25519.GenerateKey(nil)
	ks, err := parkkey.FromKeys("xian-hitech", priv, old, old)
	if err != nil {
		t.Fatal(err)
	}
	pub := ks.Public()
	if len(pub) != 2 || pub[0].Retired || !pub[1].Retired || pub[1].ID != parkkey.Thumbprint(old) {
		t.Errorf("Public = %+v", pub)
	}
	if k, ok := ks.Lookup(ks.Current().ID); !ok || !k.Equal(priv.Public()) {
		t.Error("current key not published")
	}
	if _, err := parkkey.FromKeys("Bad Park", priv); !apierror.Is(err, apierror.Invalid) {
		t.Errorf("bad park: %v", err)
	}
	if _, err := parkkey.FromKeys("xian-hitech", nil); !apierror.Is(err, apierror.Invalid) {
		t.Errorf("no key: %v", err)
	}
}
