package localproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
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

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done returns a channel closed when the process has exited, whether asked
// to or not.
func (p *Process) Done() <-chan struct{} { return p.done }

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
