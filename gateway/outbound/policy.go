package outbound

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrAddressDenied is the error of a dial (and of a registration check) to
// an address in a denied range that no allowed prefix covers.
var ErrAddressDenied = errors.New("target address not allowed")

// denied are the ranges a Policy refuses unless allowed: what a request
// from the gateway could reach inside the park's network but a subscriber
// on the internet never needs. IPv4-mapped IPv6 addresses are checked as
// the IPv4 address they map to, and NAT64 and 6to4 addresses as the IPv4
// address they embed.
var denied = prefixes(
	"0.0.0.0/8",      // "this network", 0.0.0.0 reaches the host itself
	"10.0.0.0/8",     // private (RFC 1918)
	"100.64.0.0/10",  // carrier-grade NAT (RFC 6598)
	"127.0.0.0/8",    // loopback
	"169.254.0.0/16", // link-local, cloud metadata
	"172.16.0.0/12",  // private
	"192.0.0.0/24",   // IETF protocol assignments
	"192.168.0.0/16", // private
	"198.18.0.0/15",  // benchmarking
	"224.0.0.0/4",    // multicast
	"240.0.0.0/4",    // reserved, broadcast
	"::/96",          // unspecified, loopback, IPv4-compatible (deprecated)
	"64:ff9b:1::/48", // local-use NAT64 (RFC 8215)
	"fc00::/7",       // unique local
	"fe80::/10",      // link-local
	"fec0::/10",      // site-local (deprecated)
	"ff00::/8",       // multicast
)

// metadata are cloud instance metadata endpoints. They sit in denied ranges
// and stay refused even when an operator allows their range: only an
// allowed prefix of exactly that one address lets them through.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack, …
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Policy decides which addresses a client may dial: any address outside
// the denied ranges (loopback, private, link-local, CGNAT, multicast,
// unspecified, unique-local, metadata, …), and a denied one only when an
// allowed prefix covers it. The zero Policy allows nothing denied.
type Policy struct {
	allow []netip.Prefix
}

// NewPolicy returns a policy that lets through the denied addresses inside
// allow (e.g. 127.0.0.0/8 for receivers on the same machine in tests).
func NewPolicy(allow []netip.Prefix) *Policy {
	return &Policy{allow: append([]netip.Prefix(nil), allow...)}
}

// Check returns nil for an address the policy allows, else an error
// wrapping ErrAddressDenied that names the address and the denied range
// (for the log, not for a caller).
func (p *Policy) Check(ip netip.Addr) error {
	ip = ip.WithZone("").Unmap()
	for _, a := range candidates(ip) {
		for _, d := range denied {
			if d.Contains(a) && !p.allows(ip, a) {
				return fmt.Errorf("%w: %s is in %s", ErrAddressDenied, ip, d)
			}
		}
	}
	return nil
}

// candidates are the address itself and, for NAT64 and 6to4 addresses,
// the IPv4 address they carry: both must pass.
func candidates(ip netip.Addr) []netip.Addr {
	out := []netip.Addr{ip}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		out = append(out, netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(ip):
		out = append(out, netip.AddrFrom4([4]byte(b[2:6])))
	}
	return out
}

// allows reports whether an allowed prefix covers ip (or the IPv4 address
// a it embeds). Metadata addresses need a single-address prefix.
func (p *Policy) allows(ip, a netip.Addr) bool {
	meta := false
	for _, m := range metadata {
		meta = meta || m == a || m == ip
	}
	for _, pr := range p.allow {
		if (pr.Contains(ip) || pr.Contains(a)) && (!meta || pr.IsSingleIP()) {
			return true
		}
	}
	return false
}

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckHost is the check at registration time: a literal address must
// pass Check, and a name must resolve to at least one address that does.
// It is a courtesy to the one registering (a clear error now rather than
// failed deliveries later); the check that protects is the one at dial
// time, since a name may resolve elsewhere by then.
func (p *Policy) CheckHost(ctx context.Context, r Resolver, host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.Check(ip)
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return err
	}
	var firstErr error
	for _, ip := range ips {
		err := p.Check(ip)
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		return fmt.Errorf("%s: no address", host)
	}
	return firstErr
}

// Prefixes is a flag.Value holding a list of network prefixes, given as
// repeated flags or comma-separated ("127.0.0.0/8,::1/128"); a bare address
// is a prefix of that one address.
type Prefixes []netip.Prefix

// String lists the prefixes comma-separated.
func (ps *Prefixes) String() string {
	if ps == nil {
		return ""
	}
	s := make([]string, len(*ps))
	for i, p := range *ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Set adds the comma-separated prefixes in v. A prefix with host bits set
// (127.0.0.1/8) is refused: it is most likely a typo for another range.
func (ps *Prefixes) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var p netip.Prefix
		if ip, err := netip.ParseAddr(f); err == nil {
			ip = ip.Unmap() // addresses are checked unmapped
			p = netip.PrefixFrom(ip, ip.BitLen())
		} else if p, err = netip.ParsePrefix(f); err != nil {
			return fmt.Errorf("%q is not a CIDR prefix such as 127.0.0.0/8", f)
		} else if p != p.Masked() {
			return fmt.Errorf("%q has host bits set; the network is %s", f, p.Masked())
		}
		*ps = append(*ps, p)
	}
	return nil
}
