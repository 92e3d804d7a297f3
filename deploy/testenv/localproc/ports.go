package localproc

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Ports are drawn from below Linux's ephemeral range (32768–60999 by
// default), so outgoing connections, which take their local ports from that
// range, cannot grab one between the check here and the tool's bind (the
// reasoning of Consul's sdk/freeport). Another process choosing ports the
// same way still can, which is why launchers start again on fresh ports
// ([OnFreePorts]) instead of trusting the check.
const (
	portLow  = 10000
	portHigh = 32000
)

// PortChooser returns n distinct loopback ports for one process. [FreePorts]
// is the one launchers use; tests inject others, e.g. one that takes a port
// it hands out, to prove a launcher copes.
type PortChooser func(n int) ([]int, error)

// handedOut holds every port FreePorts returned in this process, so that
// parallel tests of one test binary never draw the same port before either
// binds it: a port released and reused within a process is not worth the
// race.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// FreePorts returns n distinct loopback ports free right now for both TCP
// and UDP (Consul's serf gossips over both), none returned before in this
// process. Free now is no promise against other processes: see
// [OnFreePorts].
func FreePorts(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil || len(handedOut.ports) > (portHigh-portLow)/2 {
		handedOut.ports = map[int]bool{} // a long-lived process starts over
	}
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free loopback ports found")
		}
		p := portLow + rand.IntN(portHigh-portLow)
		if handedOut.ports[p] || !portFree(p) {
			continue
		}
		handedOut.ports[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

func portFree(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// ErrAddrInUse reports that a process could not bind one of its addresses:
// a check before start found it taken ([CheckPorts]), or the process exited
// at start and its log says so ([Launch]). It is the one failure a launcher
// on chosen ports answers by choosing again.
var ErrAddrInUse = errors.New("address already in use")

// addrInUseText is how Go (and the C library) spell EADDRINUSE; every
// process the environment runs is a Go program. Narrower than "bind", which
// also appears in Consul's own command line (-bind).
const addrInUseText = "address already in use"

// AddrInUse reports whether a process's log output says it failed to bind an
// address that was in use.
func AddrInUse(log string) bool { return strings.Contains(log, addrInUseText) }

// CheckPorts binds and releases each port on host over network ("tcp" or
// "udp") and fails with an error wrapping [ErrAddrInUse], naming the
// address, at the first that is taken. Launchers check before starting a
// tool whose readiness probe a stale process on the same port could answer.
func CheckPorts(network, host string, ports ...int) error {
	for _, p := range ports {
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		var c io.Closer
		var err error
		if network == "udp" {
			c, err = net.ListenPacket(network, addr)
		} else {
			c, err = net.Listen(network, addr)
		}
		if err != nil {
			return fmt.Errorf("%w: %s %s: %v", ErrAddrInUse, network, addr, err)
		}
		_ = c.Close()
	}
	return nil
}

// StartAttempts bounds how often [OnFreePorts] starts one process: enough
// to outlast a few unlucky draws, few enough that a real fault (a launcher
// that keeps choosing a taken port) still shows quickly.
const StartAttempts = 5

// OnFreePorts calls start with n ports drawn by choose ([FreePorts] when
// nil) and, as long as start fails with an error wrapping [ErrAddrInUse],
// again with freshly drawn ports, at most [StartAttempts] times in all: a
// port taken between choosing and binding is a reason to choose again,
// never a failure. Any other error ends the attempts at once. logf, when
// not nil, is told of each attempt that is followed by another (tests pass
// tb.Logf, so a retry shows in the test's log).
func OnFreePorts[T any](choose PortChooser, n int, logf func(format string, args ...any), start func(ports []int) (T, error)) (T, error) {
	if choose == nil {
		choose = FreePorts
	}
	var zero T
	var err error
	for attempt := 1; attempt <= StartAttempts; attempt++ {
		ports, cerr := choose(n)
		if cerr != nil {
			return zero, cerr
		}
		var v T
		if v, err = start(ports); err == nil {
			return v, nil
		}
		if !errors.Is(err, ErrAddrInUse) {
			return zero, err
		}
		if logf != nil && attempt < StartAttempts {
			logf("attempt %d/%d: %v; choosing fresh ports", attempt, StartAttempts, err)
		}
	}
	return zero, fmt.Errorf("ports in use at each of %d attempts, the last: %w", StartAttempts, err)
}

// Port is one port of a tool's options, named as the option is.
type Port struct {
	Name   string
	Number int
}

// CheckOptions validates what every tool launcher needs: a binary, and TCP
// port numbers. The error names the option at fault.
func CheckOptions(bin string, ports ...Port) error {
	if bin == "" {
		return errors.New("option Bin is empty")
	}
	for _, p := range ports {
		if p.Number <= 0 || p.Number > 65535 {
			return fmt.Errorf("option %s: %d is not a TCP port", p.Name, p.Number)
		}
	}
	return nil
}
