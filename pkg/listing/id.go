package listing

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// crockford is the ULID alphabet (Crockford's base32).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a new id for kind k: its prefix, "_", and a ULID (48-bit
// millisecond time, 80 random bits), so ids sort by creation time.
func NewID(k Kind, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("listing: crypto/rand failed: " + err.Error())
	}
	return k.IDPrefix() + "_" + encodeULID(b)
}

func encodeULID(b [16]byte) string {
	// 128 bits as 26 base32 digits: the first digit holds the top 3 bits.
	var out [26]byte
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// ValidID reports whether id is a well-formed id of kind k.
func ValidID(k Kind, id string) bool {
	p := k.IDPrefix()
	if len(id) != len(p)+1+26 || id[:len(p)+1] != p+"_" {
		return false
	}
	for i := len(p) + 1; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') || c == 'I' || c == 'L' || c == 'O' || c == 'U' {
			return false
		}
	}
	return id[len(p)+1] <= '7'
}
