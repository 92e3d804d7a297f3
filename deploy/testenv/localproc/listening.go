package localproc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrCannotTell reports that [Listening] cannot see a process's sockets on
// this system (it reads Linux's /proc); callers fall back on weaker checks.
var ErrCannotTell = errors.New("cannot tell which ports a process listens on here")

// Listening reports whether the process pid holds a listening TCP socket on
// port. A launcher asks before it believes a readiness probe: the probe's
// answer may come from another process that took the port, while the one
// just started is about to exit because it could not bind. It returns
// [ErrCannotTell] where /proc is not there to read.
func Listening(pid, port int) (bool, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		if _, serr := os.Stat("/proc/self/net/tcp"); serr != nil {
			return false, ErrCannotTell
		}
		return false, err // the process is gone, or not ours to read
	}
	inodes := make(map[string]bool, len(fds))
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	for _, table := range []string{"tcp", "tcp6"} {
		found, err := listeningIn(fmt.Sprintf("/proc/%d/net/%s", pid, table), port, inodes)
		if err != nil || found {
			return found, err
		}
	}
	return false, nil
}

// tcpListen is the state column's value for LISTEN in /proc/net/tcp.
const tcpListen = "0A"

// listeningIn scans one /proc/net/tcp-format table for a socket in LISTEN
// state on port whose inode is one of the process's.
func listeningIn(path string, port int, inodes map[string]bool) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil // e.g. no IPv6
		}
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen || !inodes[fields[9]] {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if p, err := strconv.ParseInt(hexPort, 16, 32); ok && err == nil && int(p) == port {
			return true, nil
		}
	}
	return false, sc.Err()
}
