package interests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

// DefaultRatePerHour is how many new interests one peer may deliver in
// any hour unless configured otherwise. The count is kept in gateway
// state (state.TakeInterestArrival), so every replica sharing it counts
// the same arrivals.
const DefaultRatePerHour = 30

// IdempotencyWindow is how long the Idempotency-Key of a sent interest is
// kept: the same request again within it answers the interest it made.
const IdempotencyWindow = 24 * time.Hour

// MaxKey is the longest Idempotency-Key taken.
const MaxKey = 255

// parseKey checks an Idempotency-Key header: 1 to MaxKey visible ASCII
// characters, bare (as Stripe's) or as a structured-field string in
// double quotes (as draft-ietf-httpapi-idempotency-key-header's), which
// is the same key.
func parseKey(h string) (string, error) {
	k := h
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > MaxKey || strings.IndexFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '"' || r == '\\' }) >= 0 {
		return "", apierror.InvalidField("Idempotency-Key", "must be 1 to %d visible ASCII characters (a UUID, say), optionally in double quotes", MaxKey)
	}
	return k, nil
}

// fingerprint identifies a send request by its content (as decoded, so
// spacing and member order do not matter).
func fingerprint(req SendRequest) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
