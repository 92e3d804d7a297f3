// Package outbound builds the HTTP clients the gateway calls other hosts
// with — peers (search, feeds, JWKS refresh, the peering handshake), the
// park's own services and webhook subscribers — so that the rules for
// leaving the gateway live in one place:
//
//   - no redirect is ever followed: the 3xx answer comes back to the caller
//     as it is, and every caller accepts only the status it expects, so a
//     redirect is an error (and the signature or token never reaches the
//     second host);
//   - no proxy from the environment is used;
//   - a client given a Policy dials only the addresses it allows, checked on
//     the resolved address of every connection, so a name that resolves
//     elsewhere between registration and delivery (DNS rebinding) is still
//     refused.
//
// Every refusal is logged (without paths, which may carry secrets) and
// counted by reason.
package outbound

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Refusal reasons: the values of the reason given to Options.Refused.
const (
	// RefusedRedirect is an answer with a redirect, which was not followed.
	RefusedRedirect = "redirect"
	// RefusedAddress is a dial to an address the Policy denies.
	RefusedAddress = "address_denied"
)

// DefaultDialTimeout bounds each connection attempt when Options leave it
// unset.
const DefaultDialTimeout = 2 * time.Second

// Options describe one client.
type Options struct {
	// Name labels the client in log lines and counts ("peer", "webhook", …).
	Name string
	// Transport is the tuned transport to use (nil: a new one). The client
	// takes it over: its DialContext and Proxy are set here.
	Transport *http.Transport
	// DialTimeout bounds each connection attempt (default 2 s).
	DialTimeout time.Duration
	// Policy, when set, is checked on the address of every connection.
	Policy *Policy
	// Wrap, when set, wraps the transport (tracing).
	Wrap func(http.RoundTripper) http.RoundTripper
	// Logger gets one warning per refusal (nil: none).
	Logger *slog.Logger
	// Refused, when set, counts each refusal by client name and reason.
	Refused func(client, reason string)
}

// New returns a client that never follows a redirect and, with a Policy,
// never connects to an address the policy denies.
func New(o Options) *http.Client {
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	tr := o.Transport
	if tr == nil {
		tr = &http.Transport{}
	}
	tr.Proxy = nil
	d := &net.Dialer{Timeout: o.DialTimeout}
	if o.Policy != nil {
		d.ControlContext = o.control
	}
	tr.DialContext = d.DialContext
	var rt http.RoundTripper = tr
	if o.Wrap != nil {
		rt = o.Wrap(rt)
	}
	return &http.Client{Transport: rt, CheckRedirect: o.noRedirect}
}

// noRedirect hands the redirect back to the caller instead of following it.
func (o Options) noRedirect(req *http.Request, via []*http.Request) error {
	from := via[len(via)-1]
	o.refused(req.Context(), RefusedRedirect, "outbound redirect not followed",
		"host", from.URL.Host, "location_host", req.URL.Host)
	return http.ErrUseLastResponse
}

// control runs on every connection attempt, after name resolution and
// before the connection is made: address is the IP and port being dialled.
func (o Options) control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		err = fmt.Errorf("%w: %s is not an IP address", ErrAddressDenied, address)
	} else {
		err = o.Policy.Check(ap.Addr())
	}
	if err != nil {
		o.refused(ctx, RefusedAddress, "outbound dial refused", "network", network, "address", address, "err", err)
	}
	return err
}

func (o Options) refused(ctx context.Context, reason, msg string, attrs ...any) {
	if o.Refused != nil {
		o.Refused(o.Name, reason)
	}
	if o.Logger != nil {
		o.Logger.WarnContext(ctx, msg, append([]any{"client", o.Name, "reason", reason}, attrs...)...)
	}
}
