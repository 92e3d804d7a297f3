// Command devrun is the entrypoint of the development images that the
// Tiltfile builds (deploy/docker/tilt.Dockerfile). It runs a ParkMesh
// binary and restarts it whenever Tilt's live update replaces the file, so
// a code change reaches the running pod in seconds without a new image or
// a new pod:
//
//	devrun /app/bin/app
//
// A replaced binary is restarted once the file has stopped changing: the
// running process gets SIGTERM (it deregisters from Consul and drains, as
// on any shutdown) and SIGKILL after -grace. SIGTERM or SIGINT to devrun is
// passed on to the process, and devrun exits with its status. When the
// process exits on its own, devrun logs it and waits for the next binary
// instead of exiting, so a crash does not lose the live-updated file (a
// container restart would go back to the image's binary).
//
// Tilt's own restart_process extension does the same; devrun keeps the
// Tiltfile free of extensions fetched from the network.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// fileID is what tells devrun that a binary was replaced.
type fileID struct {
	info os.FileInfo
}

func (a fileID) same(b fileID) bool {
	if a.info == nil || b.info == nil {
		return a.info == b.info
	}
	return os.SameFile(a.info, b.info) && a.info.Size() == b.info.Size() && a.info.ModTime().Equal(b.info.ModTime())
}

func stat(path string) fileID {
	info, err := os.Stat(path)
	if err != nil {
		return fileID{}
	}
	return fileID{info}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	poll := fs.Duration("poll", 300*time.Millisecond, "how often to look at the binary")
	grace := fs.Duration("grace", 10*time.Second, "how long a stopping process may drain before SIGKILL")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: devrun [-poll 300ms] [-grace 10s] BINARY [ARGS...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || *poll <= 0 || *grace <= 0 {
		fs.Usage()
		return 2
	}
	bin, binArgs := fs.Arg(0), fs.Args()[1:]
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "devrun: "+format+"\n", a...) }

	for {
		seen := stat(bin)
		cmd := exec.Command(bin, binArgs...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		var exited chan error
		if err := cmd.Start(); err != nil {
			logf("start %s: %v; waiting for a new binary", bin, err)
		} else {
			exited = make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
		}
		replaced := waitReplaced(ctx, bin, seen, *poll)
		select {
		case <-ctx.Done():
			if exited == nil {
				return 0
			}
			return exitCode(stopProcess(cmd, exited, *grace))
		case err := <-exited:
			logf("%s exited (%v); waiting for a new binary", bin, describe(err))
			select {
			case <-ctx.Done():
				return exitCode(err)
			case <-replaced:
			}
		case <-replaced:
			if exited != nil {
				logf("%s replaced; restarting", bin)
				stopProcess(cmd, exited, *grace)
			}
		}
	}
}

// waitReplaced returns a channel closed once bin differs from seen and has
// then stayed the same for one poll (a copy in progress is not a binary).
func waitReplaced(ctx context.Context, bin string, seen fileID, poll time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(poll)
		defer t.Stop()
		var candidate *fileID
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now := stat(bin)
			switch {
			case now.info == nil || now.same(seen):
				candidate = nil
			case candidate != nil && now.same(*candidate):
				close(done)
				return
			default:
				candidate = &now
			}
		}
	}()
	return done
}

// stopProcess sends SIGTERM, then SIGKILL after grace, and returns how the
// process ended.
func stopProcess(cmd *exec.Cmd, exited <-chan error, grace time.Duration) error {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		return <-exited
	}
}

func describe(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	default:
		return 1
	}
}
