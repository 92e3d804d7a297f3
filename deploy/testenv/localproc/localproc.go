// Package localproc holds what every launcher of ParkMesh's test and dev
// environment shares (the Consul agent, Jaeger, a park's services and
// gateway): starting a server process with its log file and waiting until
// it serves ([Launch], [Process]), loopback ports and starting again on
// fresh ones when a port was taken between choosing and binding
// ([FreePorts], [OnFreePorts]), finding the repository and the pinned tool
// binaries, and the tail of a log file.
package localproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RepoRoot walks up from dir to the nearest directory containing go.mod.
func RepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if st, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !st.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in any parent directory")
		}
		dir = parent
	}
}

// FindBinary returns the tool binary to run: the value of the environment
// variable envVar when set (it must be an executable file), otherwise the
// last line the install script (a path relative to the repository root,
// found from the working directory) prints. The script builds and caches
// the pinned version the first time; its progress goes to progress (nil
// discards it).
func FindBinary(ctx context.Context, envVar, script string, progress io.Writer) (string, error) {
	if bin := os.Getenv(envVar); bin != "" {
		if err := checkExecutable(bin); err != nil {
			return "", fmt.Errorf("%s=%q: %w", envVar, bin, err)
		}
		return bin, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	root, err := RepoRoot(wd)
	if err != nil {
		return "", fmt.Errorf("set %s or run inside the repository: %w", envVar, err)
	}
	return RunInstaller(ctx, filepath.Join(root, script), root, progress)
}

// RunInstaller runs the install command at path (no arguments) in dir and
// returns the executable file its last line of output names; its progress
// (stderr) goes to progress (nil discards it). When ctx ends the command
// and every process it started (a `go build` under a script) are killed,
// so a build abandoned by its launcher does not run on.
func RunInstaller(ctx context.Context, path, dir string, progress io.Writer) (string, error) {
	if err := checkExecutable(path); err != nil {
		return "", fmt.Errorf("install script: %w", err)
	}
	if progress == nil {
		progress = io.Discard
	}
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, path)
	cmd.Dir = dir
	cmd.Stdout = &stdout
	cmd.Stderr = progress
	setProcAttr(cmd, true)
	cmd.Cancel = func() error { return killGroup(cmd) }
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s failed: %w", path, err)
	}
	bin := lastLine(stdout.String())
	if err := checkExecutable(bin); err != nil {
		return "", fmt.Errorf("%s printed %q: %w", path, bin, err)
	}
	return bin, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}

func checkExecutable(path string) error {
	if path == "" {
		return errors.New("empty path")
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// TailFile returns the last n lines of the file at path, reading at most
// its last 256 KiB ("" when it cannot be read).
func TailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		_, _ = f.Seek(st.Size()-window, io.SeekStart)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
