// Package cursor seals paging state into opaque, tamper-proof cursors:
// JSON, base64url, and an HMAC-SHA256 tag, so a caller can neither edit a
// cursor nor make one up. The services' stores and the gateway's merged
// searches both page with it.
package cursor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Signer seals and opens cursors with one key.
type Signer struct{ key []byte }

// New returns a signer with key.
func New(key []byte) Signer { return Signer{key: key} }

func (s Signer) tag(b []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	return m.Sum(nil)[:16]
}

// Seal renders v as a cursor.
func (s Signer) Seal(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(s.tag(b))
}

// Open reads a cursor made by Seal with the same key into v. It reports
// false for anything else: longer than maxLen, malformed, or tampered.
func (s Signer) Open(raw string, maxLen int, v any) bool {
	p, m, ok := strings.Cut(raw, ".")
	if !ok || len(raw) > maxLen {
		return false
	}
	b, err1 := base64.RawURLEncoding.DecodeString(p)
	tag, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(tag, s.tag(b)) {
		return false
	}
	return json.Unmarshal(b, v) == nil
}
