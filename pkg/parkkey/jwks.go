package parkkey

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// MaxJWKSKeys bounds how many keys ParseJWKS accepts from one set: a park
// publishes its current key and a few retired ones.
const MaxJWKSKeys = 16

// JWK is one public key in RFC 7517 form, an RFC 8037 OKP key.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKSet is an RFC 7517 JWK Set, the body of /.well-known/jwks.json.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns every published key (current first) as a JWK Set.
func (ks *KeySet) JWKS() JWKSet {
	set := JWKSet{Keys: make([]JWK, 0, len(ks.published))}
	for _, k := range ks.published {
		set.Keys = append(set.Keys, PublicJWK(k.PublicKey))
	}
	return set
}

// PublicJWK returns pub as a JWK with its thumbprint as kid.
func PublicJWK(pub ed25519.PublicKey) JWK {
	return JWK{
		Kty: "OKP",
		Crv: "Ed25519",
		X:   base64.RawURLEncoding.EncodeToString(pub),
		Kid: Thumbprint(pub),
		Alg: "EdDSA",
		Use: "sig",
	}
}

// jwkIn is a JWK as read from a peer, with the members we must refuse.
type jwkIn struct {
	Kty    string          `json:"kty"`
	Crv    string          `json:"crv"`
	X      string          `json:"x"`
	D      json.RawMessage `json:"d"`
	Kid    string          `json:"kid"`
	Alg    *string         `json:"alg"`
	Use    *string         `json:"use"`
	KeyOps []string        `json:"key_ops"`
}

// ParseJWKS reads an RFC 7517 JWK Set and returns its keys by kid. Every key
// must be an Ed25519 OKP public key whose kid is its RFC 7638 thumbprint and
// whose x is canonical unpadded base64url; alg, when present, must be EdDSA
// and use, when present, sig. A set holding anything else, private key
// material, no key, or more than MaxJWKSKeys keys is refused whole with an
// Invalid error: a peer's published keys are pinned, so an odd set is a
// misconfiguration or an attack, not something to pick through.
func ParseJWKS(b []byte) (map[string]ed25519.PublicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, apierror.InvalidField("keys", "not a JWK set")
	}
	if len(set.Keys) == 0 {
		return nil, apierror.InvalidField("keys", "the JWK set holds no key")
	}
	if len(set.Keys) > MaxJWKSKeys {
		return nil, apierror.InvalidField("keys", "the JWK set holds %d keys, more than %d", len(set.Keys), MaxJWKSKeys)
	}
	out := make(map[string]ed25519.PublicKey, len(set.Keys))
	for i, raw := range set.Keys {
		field := fmt.Sprintf("keys[%d]", i)
		var k jwkIn
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, apierror.InvalidField(field, "not a JWK")
		}
		switch {
		case k.Kty != "OKP":
			return nil, apierror.InvalidField(field+".kty", "only OKP keys are accepted")
		case k.Crv != "Ed25519":
			return nil, apierror.InvalidField(field+".crv", "only Ed25519 keys are accepted")
		case k.D != nil:
			// Never echo it: it is someone's private key.
			return nil, apierror.InvalidField(field+".d", "a published key set must not hold private keys")
		case k.Alg != nil && *k.Alg != "EdDSA":
			return nil, apierror.InvalidField(field+".alg", "only EdDSA is accepted")
		case k.Use != nil && *k.Use != "sig":
			return nil, apierror.InvalidField(field+".use", "only signing keys are accepted")
		}
		if k.KeyOps != nil && !onlyVerify(k.KeyOps) {
			return nil, apierror.InvalidField(field+".key_ops", "only verify is accepted")
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize || base64.RawURLEncoding.EncodeToString(x) != k.X {
			return nil, apierror.InvalidField(field+".x", "not a base64url Ed25519 public key")
		}
		pub := ed25519.PublicKey(x)
		if k.Kid != Thumbprint(pub) {
			return nil, apierror.InvalidField(field+".kid", "kid is not the key's RFC 7638 thumbprint")
		}
		out[k.Kid] = pub
	}
	return out, nil
}

func onlyVerify(ops []string) bool {
	for _, op := range ops {
		if op != "verify" {
			return false
		}
	}
	return true
}
