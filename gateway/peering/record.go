package peering

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

// What the gateway keeps in Consul KV (peers, pending peering tokens) is
// signed with the park's own key, so that a KV write alone — by anyone
// holding a Consul token that may write there, or by anyone at all where
// Consul runs without ACLs — can neither add nor change a peer. A value is
// a sealed record:
//
//	{"record": <the record's JSON>, "kid": "<signing key id>", "sig": "<base64url Ed25519>"}
//
// The signature covers recordDomain, the park id, the KV key and the
// record's exact bytes, so a record cannot be moved to another key (made
// another peer's) or shown to another park. It is checked against the
// park's published keys, current and retired, so a key rotation does not
// invalidate the records; the gateway re-signs them with the new key (see
// Store.Run) before the retired key stops being published.
//
// Signatures do not stop a KV writer from deleting a record, nor from
// putting back an older record the park itself signed (a replay):
// Consul's ACLs (deploy/consulacl) keep KV writes to the gateway's token.

// recordDomain separates these signatures from any other use of the key.
const recordDomain = "parkmesh-kv-record-v1"

// sealedRecord is the KV value of a signed record.
type sealedRecord struct {
	Record json.RawMessage `json:"record"`
	KID    string          `json:"kid"`
	Sig    string          `json:"sig"`
}

// Reasons a KV value is refused (the label of
// parkmesh_peer_records_rejected_total).
const (
	rejectUnsigned   = "unsigned"      // no signature: a plain record, e.g. written by hand
	rejectMalformed  = "malformed"     // not a sealed record, or its record is not a peer
	rejectUnknownKey = "unknown_key"   // signed by a key that is not (or no longer) the park's
	rejectBadSig     = "bad_signature" // the signature does not match the record
	rejectMismatch   = "mismatch"      // a valid record stored under another peer's key
)

// errRejected is a KV value refused for its reason.
type errRejected struct{ reason string }

func (e *errRejected) Error() string { return "kv record refused: " + e.reason }

// reason returns why err refused a record ("" for nil, malformed for any
// other error).
func reason(err error) string {
	var r *errRejected
	if errors.As(err, &r) {
		return r.reason
	}
	if err != nil {
		return rejectMalformed
	}
	return ""
}

func signingInput(park, key string, record []byte) []byte {
	var b bytes.Buffer
	b.WriteString(recordDomain)
	b.WriteByte('\n')
	b.WriteString(park)
	b.WriteByte('\n')
	b.WriteString(key)
	b.WriteByte('\n')
	b.Write(record)
	return b.Bytes()
}

// seal returns the KV value for record under key, signed with the current
// key of ks.
func seal(ks *parkkey.KeySet, key string, record []byte) ([]byte, error) {
	cur := ks.Current()
	if cur == nil {
		return nil, errors.New("peering: no current signing key")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, record); err != nil {
		return nil, err
	}
	sig, err := cur.Signer().Sign(nil, signingInput(ks.Park(), key, compact.Bytes()), crypto.Hash(0))
	if err != nil {
		return nil, err
	}
	// Without HTML escaping, the record is stored byte for byte as signed.
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(sealedRecord{Record: compact.Bytes(), KID: cur.ID, Sig: base64.RawURLEncoding.EncodeToString(sig)}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// open verifies the KV value stored under key against the published keys
// of ks and returns the record and the id of the key that signed it. A
// refusal is an *errRejected naming its reason.
func open(ks *parkkey.KeySet, key string, value []byte) (record []byte, kid string, err error) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(value, &probe) != nil {
		return nil, "", &errRejected{rejectMalformed}
	}
	if _, ok := probe["sig"]; !ok {
		return nil, "", &errRejected{rejectUnsigned}
	}
	var sr sealedRecord
	if json.Unmarshal(value, &sr) != nil || len(sr.Record) == 0 || sr.KID == "" {
		return nil, "", &errRejected{rejectMalformed}
	}
	sig, err := base64.RawURLEncoding.DecodeString(sr.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, "", &errRejected{rejectBadSig}
	}
	pub, ok := ks.Lookup(sr.KID)
	if !ok {
		return nil, "", &errRejected{rejectUnknownKey}
	}
	// The record's bytes as stored: a re-encoding could differ from what
	// was signed.
	if !ed25519.Verify(pub, signingInput(ks.Park(), key, sr.Record), sig) {
		return nil, "", &errRejected{rejectBadSig}
	}
	return sr.Record, sr.KID, nil
}

// sealPeer returns the KV value of p's record.
func sealPeer(ks *parkkey.KeySet, p *Peer) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return seal(ks, kvPeers+p.ID, b)
}

// openPeer verifies and decodes the peer record stored under key.
func openPeer(ks *parkkey.KeySet, key string, value []byte) (*Peer, string, error) {
	b, kid, err := open(ks, key, value)
	if err != nil {
		return nil, "", err
	}
	var p Peer
	if err := json.Unmarshal(b, &p); err != nil || p.ID == "" {
		return nil, "", &errRejected{rejectMalformed}
	}
	if kvPeers+p.ID != key {
		return nil, "", &errRejected{rejectMismatch}
	}
	return &p, kid, nil
}

// SealPeerRecord returns the Consul KV key and value of p's peer record,
// signed with the current key of ks (the park's own): what the gateway
// writes when it pins a peer. Operators' tools (and tests) that change a
// peer record by hand must write it this way, or every gateway ignores it.
func SealPeerRecord(ks *parkkey.KeySet, p *Peer) (key string, value []byte, err error) {
	v, err := sealPeer(ks, p)
	return kvPeers + p.ID, v, err
}

// OpenPeerRecord verifies the peer record value stored under key against
// the published keys of ks and decodes it.
func OpenPeerRecord(ks *parkkey.KeySet, key string, value []byte) (*Peer, error) {
	p, _, err := openPeer(ks, key, value)
	return p, err
}
