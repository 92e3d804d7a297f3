package localproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a helper process a launcher started and reaps: it knows when
// the process ended and why, and stops it gracefully or kills it.
type Process struct {
	cmd    *exec.Cmd
	name   string
	logger *slog.Logger
	done   chan struct{}

	// logPath and logStart locate the output of this start in a log file
	// that earlier starts may have written to too ("" when discarded).
	logPath  string
	logStart int64

	mu      sync.Mutex
	stopped bool
	waitErr error
}

// StartProcess starts cmd; name appears in messages. onExit, if set, runs
// once the process has been reaped, before Done is closed (e.g. to close
// its log file).
func StartProcess(cmd *exec.Cmd, name string, logger *slog.Logger, onExit func()) (*Process, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, name: name, logger: logger, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		if onExit != nil {
			onExit()
		}
		close(p.done)
	}()
	return p, nil
}

// NotStarted returns a Process that never ran: it is done already, has no
// error, and stopping or killing it does nothing. A launcher that can start
// a tool again holds one before the first start, so it never checks for nil.
func NotStarted(name string) *Process {
	done := make(chan struct{})
	close(done)
	return &Process{name: name, logger: slog.New(slog.DiscardHandler), done: done}
}

// PID returns the process id (0 for one [NotStarted]).
func (p *Process) PID() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Done returns a channel closed when the process has exited, whether asked
// to or not.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stopped reports whether the process was asked to end (Stop or Kill),
// whether or not it has yet: a launcher watching its children tells a
// requested exit from a crash by it.
func (p *Process) Stopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// Err returns why the process ended: nil while it runs or when it ended
// because of Stop or Kill, the exit error otherwise.
func (p *Process) Err() error {
	select {
	case <-p.done:
	default:
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	return p.waitErr
}

// ExitErr returns the process's wait error, whatever ended it.
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Stop shuts the process down gracefully (SIGTERM) and waits for it to
// exit; if ctx ends first it kills the process and still waits. It is
// idempotent and returns nil once the process is gone.
func (p *Process) Stop(ctx context.Context) error {
	p.markStopped()
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return p.Kill()
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.logger.Warn(p.name+" did not stop in time; killing it", "pid", p.PID())
		return p.Kill()
	}
}

// Kill ends the process at once (SIGKILL), as a crash would, and waits for
// it to be gone. It is idempotent.
func (p *Process) Kill() error {
	p.markStopped()
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: kill pid %d: %w", p.name, p.PID(), err)
	}
	<-p.done
	return nil
}

func (p *Process) markStopped() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

// WaitReady runs check every 50 ms until it succeeds. Each try is cut
// short after a second, or as soon as the process exits: a port that
// accepts connections but never answers must not hold the wait hostage.
// It returns exited=true when the process ended first, and otherwise the
// last check error once ctx ends (nil on success).
func (p *Process) WaitReady(ctx context.Context, check func(context.Context) error) (exited bool, last error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if last = p.try(ctx, check); last == nil {
			return false, nil
		}
		select {
		case <-p.done:
			return true, last
		case <-ctx.Done():
			return false, last
		case <-tick.C:
		}
	}
}

func (p *Process) try(ctx context.Context, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return check(ctx)
}

// ErrExited reports that a process ended while [Launch] waited for it to be
// ready. The returned error wraps it, also wraps [ErrAddrInUse] when the
// process's log says a port was taken, and carries the end of the log.
var ErrExited = errors.New("exited before it was ready")

// RunOptions say how a launcher runs a helper process, whatever the tool;
// the tools' Options embed them.
type RunOptions struct {
	// LogPath, when set, is a file the process's stdout and stderr are
	// appended to, created with its directory; a header line marks each
	// start. Empty discards the output, and with it the means to explain a
	// failure or to recognise a port in use.
	LogPath string
	// ReadyTimeout bounds the wait for readiness, on top of the caller's
	// context; default 30s.
	ReadyTimeout time.Duration
	// KillWithParent asks the kernel to kill the process when the launcher
	// dies (Linux only), so a crashed test binary or launcher leaves nothing
	// holding ports. Go delivers the signal when the OS thread that started
	// the process exits, which the runtime does only in rare cases, so it is
	// meant for tests and short-lived launchers.
	KillWithParent bool
	// Logger receives the launcher's own messages (not the process's log);
	// nil discards them.
	Logger *slog.Logger
}

// Spec describes a server process for [Launch].
type Spec struct {
	// Name is how messages call the process ("consul agent",
	// "xian-hitech gateway").
	Name string
	// Bin is the executable; Args its arguments.
	Bin  string
	Args []string
	// Env is added to the launcher's own environment.
	Env []string
	// Ready is one readiness probe of the process just started, run until
	// it passes (see [Process.WaitReady]). It gets the process, so it can
	// tell it from a stale one answering on the same port (by its pid with
	// [Listening], or by [Process.LogSinceStart]).
	Ready func(ctx context.Context, p *Process) error
	RunOptions
}

// Launch starts the process s describes, in a process group of its own,
// and waits until s.Ready passes. ctx and s.ReadyTimeout bound only that
// wait: the process runs until [Process.Stop] or [Process.Kill]. If it exits
// first, the error wraps [ErrExited] (and [ErrAddrInUse] when its log says
// a port was taken, the cue for a launcher on chosen ports to choose
// again); if it is not ready in time it is killed. On any error nothing is
// left running.
func Launch(ctx context.Context, s Spec) (*Process, error) {
	if s.Bin == "" || s.Ready == nil {
		return nil, fmt.Errorf("localproc: %s: Spec needs Bin and Ready", s.Name)
	}
	if s.ReadyTimeout <= 0 {
		s.ReadyTimeout = 30 * time.Second
	}
	out, logStart, err := openLog(s)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", s.Name, err)
	}
	// Not exec.CommandContext: the process must outlive the start-up context.
	cmd := exec.Command(s.Bin, s.Args...)
	if len(s.Env) > 0 {
		cmd.Env = append(os.Environ(), s.Env...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	setProcAttr(cmd, s.KillWithParent)
	p, err := StartProcess(cmd, s.Name, s.Logger, func() { _ = out.Close() })
	if err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("%s: start %s: %w", s.Name, s.Bin, err)
	}
	p.logPath, p.logStart = s.LogPath, logStart
	p.logger.Debug(s.Name+" started", "pid", p.PID())

	readyCtx, cancel := context.WithTimeout(ctx, s.ReadyTimeout)
	defer cancel()
	exited, last := p.WaitReady(readyCtx, func(ctx context.Context) error { return s.Ready(ctx, p) })
	switch {
	case exited:
		if AddrInUse(p.LogSinceStart()) {
			return nil, fmt.Errorf("%s %w: %w (%v)%s", s.Name, ErrExited, ErrAddrInUse, p.ExitErr(), p.tailForError())
		}
		return nil, fmt.Errorf("%s %w (%v)%s", s.Name, ErrExited, p.ExitErr(), p.tailForError())
	case last != nil:
		_ = p.Kill()
		return nil, fmt.Errorf("%s not ready: %w (last: %v)%s", s.Name, readyCtx.Err(), last, p.tailForError())
	}
	p.logger.Info(s.Name+" ready", "pid", p.PID())
	return p, nil
}

// nopWriteCloser discards output when a Spec has no log file.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// openLog opens s's log file for appending, writes the header line of this
// start and returns where this start's output begins.
func openLog(s Spec) (io.WriteCloser, int64, error) {
	if s.LogPath == "" {
		return nopWriteCloser{io.Discard}, 0, nil
	}
	if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o755); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, err
	}
	header := fmt.Sprintf("==> parkmesh launcher %s: starting %s: %s %s", time.Now().Format(time.RFC3339), s.Name, s.Bin, strings.Join(s.Args, " "))
	if len(s.Env) > 0 {
		header += " with " + strings.Join(s.Env, " ")
	}
	if _, err := fmt.Fprintln(f, header); err != nil {
		f.Close()
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// LogPath returns the file the process logs to ("" when its output is
// discarded or it was not started by [Launch]).
func (p *Process) LogPath() string { return p.logPath }

// LogTail returns the last n lines of the process's log file, earlier
// starts' lines included when they are the last ("" without a log file).
func (p *Process) LogTail(n int) string {
	if p.logPath == "" {
		return ""
	}
	return TailFile(p.logPath, n)
}

// LogSinceStart returns what this start of the process has logged (its
// first 4 MiB), without the lines of earlier starts sharing the file.
func (p *Process) LogSinceStart() string {
	if p.logPath == "" {
		return ""
	}
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(p.logStart, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4<<20))
	return string(b)
}

func (p *Process) tailForError() string {
	if p.logPath == "" {
		return ""
	}
	return "\nlast lines of " + p.logPath + ":\n" + p.LogTail(30)
}
