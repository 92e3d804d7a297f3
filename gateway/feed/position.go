package feed

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/parkmesh/parkmesh/pkg/apierror"
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

// StreamPosition is a park-side stream position: the local feed's and the
// inbox's ("s1.<org>.<project>.<talent>.<inbox>").
type StreamPosition struct {
	Local Position
	Inbox int64
}

func (p StreamPosition) String() string {
	return fmt.Sprintf("s1.%d.%d.%d.%d", p.Local[0], p.Local[1], p.Local[2], p.Inbox)
}

// Behind is how many events p is behind head.
func (p StreamPosition) Behind(head StreamPosition) int64 {
	return p.Local.Behind(head.Local) + (head.Inbox - p.Inbox)
}

// After reports whether p is past head anywhere.
func (p StreamPosition) After(head StreamPosition) bool {
	return p.Local.After(head.Local) || p.Inbox > head.Inbox
}

// ParseStreamPosition reads an SSE id written by StreamPosition.String.
func ParseStreamPosition(s string) (StreamPosition, error) {
	var p StreamPosition
	n, err := parseInts(s, "s1", 4)
	if err != nil {
		return p, apierror.InvalidField("Last-Event-ID", "is not an id of this stream")
	}
	p.Local, p.Inbox = Position{n[0], n[1], n[2]}, n[3]
	return p, nil
}

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
