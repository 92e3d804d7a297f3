package peering

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

func testKeys(t *testing.T) *parkkey.KeySet {
	t.Helper()
	ks, err := parkkey.Init(t.TempDir(), "xian-hitech")
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func testPeer(id string) *Peer {
	return &Peer{ID: id, URL: "https://" + id + ".example:8443", Keys: map[string]string{"kid1": "eA"},
		EstablishedAt: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
}

// TestOpenPeerRecord: only a record the park itself signed, under its own
// key, opens; every other value is refused with its reason.
func TestOpenPeerRecord(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	key, good, err := SealPeerRecord(ks, testPeer("chengdu-hitech"))
	if err != nil {
		t.Fatal(err)
	}
	var sealed sealedRecord
	if err := json.Unmarshal(good, &sealed); err != nil {
		t.Fatal(err)
	}
	reseal := func(f func(*sealedRecord)) []byte {
		s := sealed
		f(&s)
		b, _ := json.Marshal(s)
		return b
	}
	// Another park's key (an attacker's) claiming our key id.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	forged := reseal(func(s *sealedRecord) {
		s.Record = json.RawMessage(`{"id":"chengdu-hitech","url":"http://127.0.0.1:1","keys":{}}`)
		s.Sig = base64.RawURLEncoding.EncodeToString(ed25519.Sign(otherPriv, signingInput(ks.Park(), key, s.Record)))
	})
	flipped := []byte(sealed.Sig)
	flipped[3] ^= 1
	plain, _ := json.Marshal(testPeer("chengdu-hitech"))

	tests := []struct {
		name  string
		key   string
		value []byte
		want  string // reason; "" opens
	}{
		{"signed by the park", key, good, ""},
		{"unsigned, as a plain record written by hand", key, plain, rejectUnsigned},
		{"not JSON", key, []byte("rogue"), rejectMalformed},
		{"no record", key, []byte(`{"sig":"x","kid":"y"}`), rejectMalformed},
		{"signature of another key under our kid", key, forged, rejectBadSig},
		{"signature with a flipped bit", key, reseal(func(s *sealedRecord) { s.Sig = string(flipped) }), rejectBadSig},
		{"record changed after signing", key, reseal(func(s *sealedRecord) {
			s.Record = bytes.Replace(s.Record, []byte("chengdu-hitech.example"), []byte("evil.example"), 1)
		}), rejectBadSig},
		{"unknown key id", key, reseal(func(s *sealedRecord) { s.KID = "not-ours" }), rejectUnknownKey},
		{"moved under another peer's key", kvPeers + "rogue", good, rejectBadSig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := OpenPeerRecord(ks, tt.key, tt.value)
			if got := reason(err); got != tt.want {
				t.Fatalf("OpenPeerRecord: reason %q (err %v), want %q", got, err, tt.want)
			}
			if tt.want == "" && (p.ID != "chengdu-hitech" || p.URL != "https://chengdu-hitech.example:8443") {
				t.Errorf("opened %+v", p)
			}
		})
	}
}

// TestRecordMismatch: a record signed for one key but naming another peer
// (which only the park's own key could make) is still refused.
func TestRecordMismatch(t *testing.T) {
	t.Parallel()
	ks := testKeys(t)
	b, _ := json.Marshal(testPeer("chengdu-hitech"))
	v, err := seal(ks, kvPeers+"siliconvalley-offshore", b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPeerRecord(ks, kvPeers+"siliconvalley-offshore", v); reason(err) != rejectMismatch {
		t.Fatalf("err = %v, want %s", err, rejectMismatch)
	}
}

// TestRecordSurvivesRotation: a record signed before a rotation opens with
// the new key set (the retired key is still published) and not with a set
// that no longer publishes it; its exact bytes survive characters JSON
// would escape.
func TestRecordSurvivesRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks, err := parkkey.Init(dir, "xian-hitech")
	if err != nil {
		t.Fatal(err)
	}
	p := testPeer("chengdu-hitech")
	p.URL = "https://chengdu.example/?a=<b>&c"
	key, v, err := SealPeerRecord(ks, p)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := parkkey.Rotate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenPeerRecord(rotated, key, v)
	if err != nil || got.URL != p.URL {
		t.Fatalf("after a rotation: %+v, %v", got, err)
	}
	onlyNew, err := parkkey.FromKeys("xian-hitech", rotated.Current().Signer().(ed25519.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPeerRecord(onlyNew, key, v); reason(err) != rejectUnknownKey {
		t.Fatalf("with the old key no longer published: err %v, want %s", err, rejectUnknownKey)
	}
}
