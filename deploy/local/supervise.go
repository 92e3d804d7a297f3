package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/launcher"
)

// RestartPolicy says how the cluster starts a crashed service, gateway,
// Consul agent or Jaeger again, as a process supervisor would: after a wait that doubles with each
// crash that follows soon after the last start, and not at all once the
// process has crashed too often within a window (the console says so; the
// other processes run on).
type RestartPolicy struct {
	// First is the wait before restarting a process that had been up for
	// Stable or longer; each quicker crash doubles the wait, up to Max.
	First, Max time.Duration
	// Stable is how long a process must stay up for its next crash to wait
	// only First again.
	Stable time.Duration
	// Crashes within Window make the cluster give up on the process; a
	// start that fails counts as a crash.
	Crashes int
	Window  time.Duration
}

// DefaultRestartPolicy is the demo's: 1 s doubling to 30 s, back to 1 s
// after a minute up, giving up after 5 crashes within 5 minutes.
var DefaultRestartPolicy = RestartPolicy{First: time.Second, Max: 30 * time.Second, Stable: time.Minute, Crashes: 5, Window: 5 * time.Minute}

func (rp RestartPolicy) withDefaults() RestartPolicy {
	d := DefaultRestartPolicy
	if rp.First <= 0 {
		rp.First = d.First
	}
	if rp.Max < rp.First {
		rp.Max = max(d.Max, rp.First)
	}
	if rp.Stable <= 0 {
		rp.Stable = d.Stable
	}
	if rp.Crashes <= 0 {
		rp.Crashes = d.Crashes
	}
	if rp.Window <= 0 {
		rp.Window = d.Window
	}
	return rp
}

// crashHistory is what the policy remembers of one process (a park's
// service or gateway on its address, a park's Consul agent, Jaeger) across
// its restarts.
type crashHistory struct {
	mu      sync.Mutex    // held by the one restart loop of the process
	started time.Time     // the latest start
	wait    time.Duration // the latest wait before a restart
	crashes []time.Time   // within the window
}

// crashed records a crash at now and returns the wait before the next
// start, or giveUp.
func (rp RestartPolicy) crashed(h *crashHistory, now time.Time) (wait time.Duration, giveUp bool) {
	kept := h.crashes[:0]
	for _, t := range h.crashes {
		if now.Sub(t) < rp.Window {
			kept = append(kept, t)
		}
	}
	h.crashes = append(kept, now)
	if len(h.crashes) >= rp.Crashes {
		return 0, true
	}
	if h.wait == 0 || now.Sub(h.started) >= rp.Stable {
		h.wait = rp.First
	} else {
		h.wait = min(2*h.wait, rp.Max)
	}
	return h.wait, false
}

// supervise starts park p's crashed services and gateways again until the
// cluster stops; each is handled on its own, so two crashes wait in
// parallel.
func (c *Cluster) supervise(p *launcher.Park) {
	defer c.bg.Done()
	histories := map[string]*crashHistory{}
	since := time.Now()
	for {
		select {
		case pr := <-p.Exited():
			key := pr.Name + " " + pr.Addr
			h := histories[key]
			if h == nil {
				h = &crashHistory{started: since}
				histories[key] = h
			}
			c.bg.Add(1)
			go func() {
				defer c.bg.Done()
				h.mu.Lock()
				defer h.mu.Unlock()
				if !c.restart(procCrash(p, pr), h) && c.bgCtx.Err() == nil {
					select {
					case c.gaveUp <- pr:
					default:
					}
				}
			}()
		case <-c.bgCtx.Done():
			return
		}
	}
}

// procCrash is pr, a service or gateway of p that ended, for [Cluster.restart].
func procCrash(p *launcher.Park, pr *launcher.Proc) crash {
	return crash{
		what: pr.Park + " " + pr.Name, pid: pr.PID(), exitErr: pr.ExitErr(), logPath: pr.LogPath(),
		start: func(ctx context.Context) (int, string, error) {
			np, err := p.Restart(ctx, pr)
			if err != nil {
				return 0, "", err
			}
			return np.PID(), np.Addr, nil
		},
	}
}

// process is the latest start of a program the cluster keeps up on its
// own, outside a park's launcher: a park's Consul agent
// (consulagent.Agent) or Jaeger (jaegerserver.Server).
type process interface {
	Done() <-chan struct{}
	Stopped() bool
	Err() error
	PID() int
	LogPath() string
}

// keepUp starts a process again each time it ends unasked (see
// [RestartPolicy]), until the cluster stops or the policy gives up. cur is
// its latest start; again starts it where it was and returns the new
// start and its address.
func (c *Cluster) keepUp(what string, cur process, again func(ctx context.Context) (process, string, error)) {
	h := &crashHistory{started: time.Now()}
	for {
		select {
		case <-cur.Done():
		case <-c.bgCtx.Done():
			return
		}
		if cur.Stopped() {
			return
		}
		next := cur
		ok := c.restart(crash{
			what: what, pid: cur.PID(), exitErr: cur.Err(), logPath: cur.LogPath(),
			start: func(ctx context.Context) (int, string, error) {
				np, addr, err := again(ctx)
				if err != nil {
					return 0, "", err
				}
				next = np
				return np.PID(), addr, nil
			},
		}, h)
		if !ok {
			return
		}
		cur = next
	}
}

// superviseAgent starts park p's Consul agent again when it crashes, on
// the same ports and data directory: it finds its catalog, ACLs and the
// services registered with it as they were, and the park's processes
// reconnect by themselves (see docs/decisions.md).
func (c *Cluster) superviseAgent(p *launcher.Park) {
	defer c.bg.Done()
	a := p.Agent
	c.keepUp(p.ID+" consul", a, func(ctx context.Context) (process, string, error) {
		return a, a.HTTPAddr(), a.Restart(ctx)
	})
}

// crash is a process that ended without being asked to, as
// [Cluster.restart] starts it again.
type crash struct {
	what    string // as the console names it: "xian-hitech gateway", "jaeger"
	pid     int
	exitErr error // nil: exit status 0
	logPath string
	// start starts it again where it was and returns its pid and address.
	start func(ctx context.Context) (pid int, addr string, err error)
}

// restart starts cr again after the policy's wait, retrying a start that
// fails, until it runs (true), the policy gives up or the cluster stops
// (false).
func (c *Cluster) restart(cr crash, h *crashHistory) bool {
	rp := c.cfg.Restart
	status := "exit status 0"
	if cr.exitErr != nil {
		status = cr.exitErr.Error()
	}
	cause := fmt.Sprintf("(pid %d) exited: %s", cr.pid, status)
	for {
		wait, giveUp := rp.crashed(h, time.Now())
		if giveUp {
			c.out.say("%s %s; it crashed %d times within %s, so it stays down (its log: %s). The other processes run on; restart the demo to try again.",
				cr.what, cause, rp.Crashes, rp.Window, cr.logPath)
			return false
		}
		c.out.say("%s %s; restarting it in %s (its log: %s)", cr.what, cause, wait, cr.logPath)
		select {
		case <-time.After(wait):
		case <-c.bgCtx.Done():
			return false
		}
		pid, addr, err := cr.start(c.bgCtx)
		if c.bgCtx.Err() != nil {
			return false
		}
		h.started = time.Now()
		if err == nil {
			c.changed() // demo.json first: it is true once the console says so
			c.out.say("%s is running again (pid %d, %s)", cr.what, pid, addr)
			return true
		}
		cause = "did not start again: " + firstLine(err.Error())
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// console is the demo's output, shared by the launcher, the supervisors
// and Jaeger's background build: each write reaches it whole.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

func newConsole(w io.Writer) *console {
	if c, ok := w.(*console); ok {
		return c
	}
	return &console{w: w}
}

func (c *console) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(b)
}

// say writes one message and a newline.
func (c *console) say(format string, args ...any) {
	fmt.Fprintf(c, format+"\n", args...)
}

// lines returns a writer that passes complete lines to the console, for
// the output of a process running beside the others' (Close passes a last
// unfinished line).
func (c *console) lines() *lineWriter { return &lineWriter{c: c} }

type lineWriter struct {
	c   *console
	mu  sync.Mutex
	buf []byte
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		if _, err := l.c.Write(l.buf[:i+1]); err != nil {
			return 0, err
		}
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	return len(b), nil
}

func (l *lineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		_, err := l.c.Write(append(l.buf, '\n'))
		l.buf = nil
		return err
	}
	return nil
}
