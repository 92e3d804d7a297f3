package feed

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Position is where a reader stands in the park's three change logs: the
// last sequence number read from each service, in listing.Kinds order. It
// is the SSE id of the federation feed ("v1.<org>.<project>.<talent>"), so
// any gateway replica can resume any subscriber and the gateway itself
// keeps no state for it.
type Position [3]int64

func (p Position) String() string { return fmt.Sprintf("v1.%d.%d.%d", p[0], p[1], p[2]) }

// Behind is how many changes p is behind head.
func (p Position) Behind(head Position) int64 {
	return (head[0] - p[0]) + (head[1] - p[1]) + (head[2] - p[2])
}

// After reports whether p is past head in any log: such an id was not
// issued by this park's logs as they are now.
func (p Position) After(head Position) bool {
	return p[0] > head[0] || p[1] > head[1] || p[2] > head[2]
}

// ParsePosition reads an SSE id written by Position.String.
func ParsePosition(s string) (Position, error) {
	var p Position
	n, err := parseInts(s, "v1", 3)
	if err != nil {
		return p, apierror.InvalidField("Last-Event-ID", "is not an id of this feed")
	}
	copy(p[:], n)
	return p, nil
}

// Equal implements Pos.
func (p Position) Equal(q Position) bool { return p == q }

// KindIndex is k's place in a Position (listing.Kinds order); -1 for an
// unknown kind.
func KindIndex(k listing.Kind) int {
	for i, kk := range listing.Kinds {
		if kk == k {
			return i
		}
	}
	return -1
}

// ClubPosition is where a park-side reader stands in the club index: for
// each origin park (this one and its peers), the Position in that park's
// change logs up to which it has read. Positions come from the origins'
// own sequences, so every replica of this gateway can resume any reader,
// whatever its own copy of the index looks like. A park missing from it
// has not been read at all. The SSE id is
// "c1~<park>.<org>.<project>.<talent>~…", parks sorted.
type ClubPosition struct {
	parks map[string]Position
}

// NewClubPosition returns a position holding a copy of parks.
func NewClubPosition(parks map[string]Position) ClubPosition {
	c := ClubPosition{parks: make(map[string]Position, len(parks))}
	for k, v := range parks {
		c.parks[k] = v
	}
	return c
}

// Of is where the reader stands in park's logs.
func (c ClubPosition) Of(park string) Position { return c.parks[park] }

// With returns a copy of c with park's position set to p.
func (c ClubPosition) With(park string, p Position) ClubPosition {
	n := NewClubPosition(c.parks)
	n.parks[park] = p
	return n
}

// Parks lists the parks c holds a position for, sorted.
func (c ClubPosition) Parks() []string {
	out := make([]string, 0, len(c.parks))
	for k := range c.parks {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c ClubPosition) String() string {
	var b strings.Builder
	b.WriteString("c1")
	for _, park := range c.Parks() {
		p := c.parks[park]
		fmt.Fprintf(&b, "~%s.%d.%d.%d", park, p[0], p[1], p[2])
	}
	return b.String()
}

// Equal implements Pos.
func (c ClubPosition) Equal(o ClubPosition) bool {
	if len(c.parks) != len(o.parks) {
		return false
	}
	for k, v := range c.parks {
		if w, ok := o.parks[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Behind is how many sequence numbers c is behind head, over the parks
// head holds.
func (c ClubPosition) Behind(head ClubPosition) int64 {
	var n int64
	for park, h := range head.parks {
		n += max(0, c.parks[park].Behind(h))
	}
	return n
}

// AheadOf lists the parks where c is past head: positions not issued by
// those parks' logs as this gateway knows them.
func (c ClubPosition) AheadOf(head ClubPosition) []string {
	var out []string
	for _, park := range c.Parks() {
		if h, ok := head.parks[park]; ok && c.parks[park].After(h) {
			out = append(out, park)
		}
	}
	return out
}

// ParseClubPosition reads an SSE id written by ClubPosition.String.
func ParseClubPosition(s string) (ClubPosition, error) {
	bad := apierror.InvalidField("Last-Event-ID", "is not an id of this stream")
	parts := strings.Split(s, "~")
	if parts[0] != "c1" || len(parts) > 1+maxClubParks {
		return ClubPosition{}, bad
	}
	c := ClubPosition{parks: map[string]Position{}}
	for _, part := range parts[1:] {
		park, rest, ok := strings.Cut(part, ".")
		if !ok || !listing.ValidParkID(park) {
			return ClubPosition{}, bad
		}
		if _, dup := c.parks[park]; dup {
			return ClubPosition{}, bad
		}
		n, err := parseInts("v1."+rest, "v1", 3)
		if err != nil {
			return ClubPosition{}, bad
		}
		c.parks[park] = Position{n[0], n[1], n[2]}
	}
	return c, nil
}

// maxClubParks bounds the parks one position may name.
const maxClubParks = 1000

// parseInts reads "<prefix>.<n1>...<nk>" with k non-negative integers.
func parseInts(s, prefix string, k int) ([]int64, error) {
	parts := strings.Split(s, ".")
	if len(parts) != k+1 || parts[0] != prefix {
		return nil, fmt.Errorf("not %s with %d numbers", prefix, k)
	}
	out := make([]int64, k)
	for i := range k {
		n, err := strconv.ParseInt(parts[i+1], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad number %q", parts[i+1])
		}
		out[i] = n
	}
	return out, nil
}
