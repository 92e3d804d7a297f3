// Package parkkey holds a park's Ed25519 signing keys: the current key that
// signs the park's tokens and the retired keys that stay published until the
// tokens they signed have expired.
//
// The keys live under <data-dir>/keys/ (mode 0700):
//
//	keyset.json     the manifest: park id and every key's kid and dates
//	<kid>.key       the current private key, PEM "PRIVATE KEY" (PKCS #8)
//	<kid>.pub       a retired key's public half, PEM "PUBLIC KEY" (PKIX)
//
// Every file is written with mode 0600 to a temporary name and renamed into
// place, and the manifest is written last, so a reader never sees a manifest
// naming a file that has not been written yet. A retired key keeps only its
// public half: nothing signs with it again, so its private half is deleted.
//
// The kid of a key is its RFC 7638 JWK thumbprint.
package parkkey

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// DefaultGrace is how long a retired key stays published after a rotation
// when no longer-lived token was recorded for it (see RetainUntil). It is
// longer than a federation token lives (5 minutes) plus verifier leeway.
const DefaultGrace = 10 * time.Minute

// KeysDir is the directory, inside a data directory, that holds the keys.
const KeysDir = "keys"

const (
	manifestName    = "keyset.json"
	manifestVersion = 1
	privateSuffix   = ".key"
	publicSuffix    = ".pub"
	lockName        = ".lock"
	tmpPrefix       = ".tmp-"
)

// Dir returns the key directory inside dataDir.
func Dir(dataDir string) string { return filepath.Join(dataDir, KeysDir) }

// Key is a published verification key.
type Key struct {
	// ID is the key's kid: its RFC 7638 thumbprint.
	ID        string
	PublicKey ed25519.PublicKey
	CreatedAt time.Time
	// Retired is false for the current key only.
	Retired bool
	// RetiredAt is when a rotation replaced the key.
	RetiredAt time.Time
	// PublishedUntil is when a retired key stops being published.
	PublishedUntil time.Time
}

// SigningKey is the park's current key. Its private half is reachable only
// through Signer, and it formats without it, so printing a SigningKey never
// leaks key material.
type SigningKey struct {
	Key
	private ed25519.PrivateKey
}

// Signer returns the private key for signing (an ed25519.PrivateKey).
func (k *SigningKey) Signer() crypto.Signer { return k.private }

// String describes the key by its kid only.
func (k *SigningKey) String() string { return "parkkey.SigningKey{kid: " + k.ID + "}" }

// GoString keeps %#v from printing the private key.
func (k *SigningKey) GoString() string { return k.String() }

// Format keeps every fmt verb (%v, %+v, %x, …) from printing the private key.
func (k *SigningKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// KeySet is a park's keys as loaded at one moment: the current signing key
// and every published key (current first, then retired, newest first). It is
// immutable and safe for concurrent use.
type KeySet struct {
	park      string
	current   *SigningKey
	published []Key
	byID      map[string]ed25519.PublicKey
}

// Park returns the id of the park the keys belong to.
func (ks *KeySet) Park() string { return ks.park }

// Current returns the key that signs new tokens.
func (ks *KeySet) Current() *SigningKey { return ks.current }

// Public returns every published key: the current one first, then the
// retired ones that are still published, newest first.
func (ks *KeySet) Public() []Key { return slices.Clone(ks.published) }

// Lookup returns the published key with the given kid.
func (ks *KeySet) Lookup(kid string) (ed25519.PublicKey, bool) {
	k, ok := ks.byID[kid]
	return k, ok
}

// nextExpiry returns when the next retired key stops being published, zero
// if none is retired.
func (ks *KeySet) nextExpiry() time.Time {
	var next time.Time
	for _, k := range ks.published {
		if k.Retired && !k.PublishedUntil.IsZero() && (next.IsZero() || k.PublishedUntil.Before(next)) {
			next = k.PublishedUntil
		}
	}
	return next
}

// Thumbprint returns the RFC 7638 JWK thumbprint of an Ed25519 public key:
// the unpadded base64url SHA-256 of {"crv":"Ed25519","kty":"OKP","x":…},
// the required members in lexicographic order with no whitespace.
func Thumbprint(pub ed25519.PublicKey) string {
	// x is base64url, so it needs no JSON escaping.
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Option changes how Load, Rotate or a Reloader work.
type Option func(*options)

type options struct {
	grace time.Duration
	now   func() time.Time
}

func buildOptions(opts []Option) options {
	o := options{grace: DefaultGrace, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithGrace sets how long Rotate keeps the retiring key published (default
// DefaultGrace). A longer RetainUntil recorded for the key wins.
func WithGrace(d time.Duration) Option { return func(o *options) { o.grace = max(d, 0) } }

// WithClock sets the clock Load and a Reloader use to decide which retired
// keys are still published (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// manifest is keyset.json.
type manifest struct {
	Version int           `json:"version"`
	Park    string        `json:"park"`
	Keys    []manifestKey `json:"keys"`
}

type manifestKey struct {
	ID        string    `json:"kid"`
	CreatedAt time.Time `json:"created_at"`
	// RetiredAt is set when a rotation replaced the key.
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	// PublishedUntil is set with RetiredAt: the key is pruned after it.
	PublishedUntil *time.Time `json:"published_until,omitempty"`
	// RetainUntil is the latest time a token signed by the key may still
	// be presented (see RetainUntil).
	RetainUntil *time.Time `json:"retain_until,omitempty"`
}

func (m *manifest) current() (*manifestKey, error) {
	var cur *manifestKey
	for i := range m.Keys {
		if m.Keys[i].RetiredAt == nil {
			if cur != nil {
				return nil, fmt.Errorf("parkkey: manifest names two current keys (%s, %s)", cur.ID, m.Keys[i].ID)
			}
			cur = &m.Keys[i]
		}
	}
	if cur == nil {
		return nil, errors.New("parkkey: manifest names no current key")
	}
	return cur, nil
}

func (m *manifest) validate() error {
	if m.Version != manifestVersion {
		return fmt.Errorf("parkkey: manifest version %d not supported", m.Version)
	}
	if !listing.ValidParkID(m.Park) {
		return fmt.Errorf("parkkey: manifest park %q is not a park id", m.Park)
	}
	seen := map[string]bool{}
	for _, k := range m.Keys {
		if !validKID(k.ID) || seen[k.ID] {
			return fmt.Errorf("parkkey: manifest has a bad or repeated kid %q", k.ID)
		}
		seen[k.ID] = true
		if (k.RetiredAt == nil) != (k.PublishedUntil == nil) {
			return fmt.Errorf("parkkey: manifest key %s has retired_at without published_until", k.ID)
		}
	}
	_, err := m.current()
	return err
}

// validKID accepts what Thumbprint produces: 43 base64url characters. File
// names are built from kids, so nothing else may pass.
func validKID(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func utc(t time.Time) time.Time { return t.UTC().Round(0) }

// Init creates the first signing key of park in dataDir's key directory and
// returns the key set. It refuses (code Conflict) when the directory already
// holds keys, and Invalid when parkID is not a park id. WithClock sets the
// key's creation time.
func Init(dataDir, parkID string, opts ...Option) (*KeySet, error) {
	o := buildOptions(opts)
	now := utc(o.now())
	if !listing.ValidParkID(parkID) {
		return nil, apierror.InvalidField("park", "%q is not a park id (lower-case letters, digits, hyphens)", parkID)
	}
	dir := Dir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("parkkey: create key directory: %w", err)
	}
	// MkdirAll leaves an existing directory alone and is subject to the
	// umask; the key directory is ours, so say exactly what it is.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("parkkey: %w", err)
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if _, err := os.Lstat(filepath.Join(dir, manifestName)); err == nil {
		return nil, apierror.New(apierror.Conflict, "%s already holds a key set; rotate it instead", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("parkkey: %w", err)
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("parkkey: generate key: %w", err)
	}
	kid := Thumbprint(priv.Public().(ed25519.PublicKey))
	if err := writePrivate(dir, kid, priv); err != nil {
		return nil, err
	}
	m := manifest{Version: manifestVersion, Park: parkID, Keys: []manifestKey{{ID: kid, CreatedAt: utc(now)}}}
	if err := writeManifest(dir, &m, false); err != nil {
		_ = os.Remove(filepath.Join(dir, kid+privateSuffix))
		if errors.Is(err, fs.ErrExist) {
			return nil, apierror.New(apierror.Conflict, "%s already holds a key set; rotate it instead", dir)
		}
		return nil, err
	}
	return Load(dataDir, WithClock(o.now))
}

// Load reads the key set in dataDir's key directory. Retired keys whose
// publication has ended are left out (Load never writes, so it works on a
// read-only mount; Rotate deletes them). It returns NotFound when the
// directory holds no key set.
func Load(dataDir string, opts ...Option) (*KeySet, error) {
	o := buildOptions(opts)
	dir := Dir(dataDir)
	// A rotation may replace the manifest and delete the files it no longer
	// names between our reading the manifest and the key files; reading the
	// new manifest settles it.
	var lastErr error
	for range 3 {
		m, err := readManifest(dir)
		if err != nil {
			return nil, err
		}
		ks, err := loadKeys(dir, m, o.now())
		if err == nil {
			return ks, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func loadKeys(dir string, m *manifest, now time.Time) (*KeySet, error) {
	ks := &KeySet{park: m.Park, byID: map[string]ed25519.PublicKey{}}
	var retired []Key
	for _, mk := range m.Keys {
		if mk.RetiredAt != nil {
			if !now.Before(*mk.PublishedUntil) {
				continue
			}
			pub, err := readPublic(dir, mk.ID)
			if err != nil {
				return nil, err
			}
			retired = append(retired, Key{ID: mk.ID, PublicKey: pub, CreatedAt: mk.CreatedAt, Retired: true, RetiredAt: *mk.RetiredAt, PublishedUntil: *mk.PublishedUntil})
			continue
		}
		priv, err := readPrivate(dir, mk.ID)
		if err != nil {
			return nil, err
		}
		ks.current = &SigningKey{
			Key:     Key{ID: mk.ID, PublicKey: priv.Public().(ed25519.PublicKey), CreatedAt: mk.CreatedAt},
			private: priv,
		}
	}
	slices.SortStableFunc(retired, func(a, b Key) int { return b.RetiredAt.Compare(a.RetiredAt) })
	ks.published = append([]Key{ks.current.Key}, retired...)
	for _, k := range ks.published {
		ks.byID[k.ID] = k.PublicKey
	}
	return ks, nil
}

// Rotate makes a new current key in dataDir's key directory. The previous
// key stays published, retired at now, until now plus the grace period (see
// WithGrace) or the time recorded with RetainUntil, whichever is later.
// Retired keys past their publication are deleted. It returns the new set.
func Rotate(dataDir string, now time.Time, opts ...Option) (*KeySet, error) {
	o := buildOptions(opts)
	now = utc(now)
	dir := Dir(dataDir)
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	old, err := m.current()
	if err != nil {
		return nil, err
	}
	oldPriv, err := readPrivate(dir, old.ID)
	if err != nil {
		return nil, err
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("parkkey: generate key: %w", err)
	}
	kid := Thumbprint(priv.Public().(ed25519.PublicKey))
	if err := writePrivate(dir, kid, priv); err != nil {
		return nil, err
	}
	if err := writePublic(dir, old.ID, oldPriv.Public().(ed25519.PublicKey)); err != nil {
		return nil, err
	}

	until := now.Add(o.grace)
	if old.RetainUntil != nil && old.RetainUntil.After(until) {
		until = *old.RetainUntil
	}
	retiredAt := now
	old.RetiredAt, old.PublishedUntil = &retiredAt, &until

	kept := []manifestKey{{ID: kid, CreatedAt: now}}
	for _, k := range m.Keys {
		if k.RetiredAt != nil && now.Before(*k.PublishedUntil) {
			kept = append(kept, k)
		}
	}
	m.Keys = kept
	if err := writeManifest(dir, m, true); err != nil {
		return nil, err
	}
	sweep(dir, m)
	return Load(dataDir, WithClock(func() time.Time { return now }))
}

// RetainUntil records that tokens signed by the key kid may be presented
// until t (their expiry plus the verifier's leeway), so that a later
// rotation keeps the key published at least that long. Issuers of tokens
// that outlive DefaultGrace (such as the admin CLI's staff tokens) call it;
// it only ever extends. It returns NotFound for a kid not in the set.
func RetainUntil(dataDir, kid string, t time.Time) error {
	dir := Dir(dataDir)
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()

	m, err := readManifest(dir)
	if err != nil {
		return err
	}
	t = utc(t)
	for i := range m.Keys {
		k := &m.Keys[i]
		if k.ID != kid {
			continue
		}
		changed := false
		if k.RetainUntil == nil || t.After(*k.RetainUntil) {
			k.RetainUntil, changed = &t, true
		}
		if k.PublishedUntil != nil && t.After(*k.PublishedUntil) {
			k.PublishedUntil, changed = &t, true
		}
		if !changed {
			return nil
		}
		return writeManifest(dir, m, true)
	}
	return apierror.New(apierror.NotFound, "no key %s in %s", kid, dir)
}

// sweep deletes key files the manifest no longer names, the private halves
// of retired keys and temporary files a crash may have left. Failures are
// left for the next rotation.
func sweep(dir string, m *manifest) {
	want := map[string]bool{}
	for _, k := range m.Keys {
		if k.RetiredAt == nil {
			want[k.ID+privateSuffix] = true
		} else {
			want[k.ID+publicSuffix] = true
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		ours := strings.HasSuffix(name, privateSuffix) || strings.HasSuffix(name, publicSuffix) || strings.HasPrefix(name, tmpPrefix)
		if ours && !want[name] && e.Type().IsRegular() {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
}

func readManifest(dir string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, apierror.New(apierror.NotFound, "no key set in %s; run parkmesh init first", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("parkkey: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parkkey: %s: %w", filepath.Join(dir, manifestName), err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// writeManifest writes m atomically. With replace false it fails with
// fs.ErrExist when a manifest is already there, even against a concurrent
// writer without the lock, because a hard link never replaces its target.
func writeManifest(dir string, m *manifest, replace bool) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("parkkey: %w", err)
	}
	b = append(b, '\n')
	target := filepath.Join(dir, manifestName)
	if replace {
		return writeFileAtomic(target, b)
	}
	tmp, err := writeTemp(dir, b)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("parkkey: %w", err)
	}
	return syncDir(dir)
}

func writePrivate(dir, kid string, priv ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("parkkey: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, kid+privateSuffix), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func writePublic(dir, kid string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("parkkey: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, kid+publicSuffix), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func readPrivate(dir, kid string) (ed25519.PrivateKey, error) {
	der, err := readPEM(filepath.Join(dir, kid+privateSuffix), "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parkkey: key %s: %w", kid, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parkkey: key %s is a %T, not Ed25519", kid, k)
	}
	if got := Thumbprint(priv.Public().(ed25519.PublicKey)); got != kid {
		return nil, fmt.Errorf("parkkey: key file for %s holds key %s", kid, got)
	}
	return priv, nil
}

func readPublic(dir, kid string) (ed25519.PublicKey, error) {
	der, err := readPEM(filepath.Join(dir, kid+publicSuffix), "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parkkey: key %s: %w", kid, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("parkkey: key %s is a %T, not Ed25519", kid, k)
	}
	if got := Thumbprint(pub); got != kid {
		return nil, fmt.Errorf("parkkey: key file for %s holds key %s", kid, got)
	}
	return pub, nil
}

// readPEM returns the DER of the one block of type typ in path. Errors name
// the file but never include its contents.
func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("parkkey: %w", err)
	}
	block, rest := pem.Decode(b)
	if block == nil || block.Type != typ || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("parkkey: %s does not hold one PEM %q block", path, typ)
	}
	return block.Bytes, nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("parkkey: %w", err)
	}
	return syncDir(dir)
}

// writeTemp writes data to a new 0600 file in dir and returns its name.
func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("parkkey: %w", err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		_ = f.Close()
		_ = os.Remove(name)
		return "", fmt.Errorf("parkkey: %w", err)
	}
	// CreateTemp already uses 0600; Chmod makes it independent of that and
	// of the umask.
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return "", fmt.Errorf("parkkey: %w", err)
	}
	return name, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("parkkey: %w", err)
	}
	defer d.Close()
	// Some file systems cannot sync a directory; the rename itself is
	// already done, so that is not worth failing for.
	_ = d.Sync()
	return nil
}

// FromKeys returns an in-memory key set of park, for tests and for keys
// kept somewhere other than a key directory: current signs, and it and the
// previous keys are published. It returns Invalid for a bad park id or key.
func FromKeys(park string, current ed25519.PrivateKey, previous ...ed25519.PublicKey) (*KeySet, error) {
	if !listing.ValidParkID(park) {
		return nil, apierror.InvalidField("park", "%q is not a park id (lower-case letters, digits, hyphens)", park)
	}
	if len(current) != ed25519.PrivateKeySize {
		return nil, apierror.InvalidField("current", "not an Ed25519 private key")
	}
	pub := current.Public().(ed25519.PublicKey)
	ks := &KeySet{
		park:    park,
		current: &SigningKey{Key: Key{ID: Thumbprint(pub), PublicKey: pub}, private: current},
		byID:    map[string]ed25519.PublicKey{},
	}
	ks.published = []Key{ks.current.Key}
	ks.byID[ks.current.ID] = pub
	for i, p := range previous {
		if len(p) != ed25519.PublicKeySize {
			return nil, apierror.InvalidField(fmt.Sprintf("previous[%d]", i), "not an Ed25519 public key")
		}
		kid := Thumbprint(p)
		if _, dup := ks.byID[kid]; dup {
			continue
		}
		ks.published = append(ks.published, Key{ID: kid, PublicKey: p, Retired: true})
		ks.byID[kid] = p
	}
	return ks, nil
}
