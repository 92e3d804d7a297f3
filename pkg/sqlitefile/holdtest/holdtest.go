// Package holdtest holds a SQLite file open in another process, as a
// running service would, for tests of what must refuse a file in use
// (restore, the in-use check). The other process is the test binary
// itself, started again: a package using [Hold] calls [Main] from its
// TestMain.
package holdtest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// env names the file the re-started test binary holds open.
const env = "PARKMESH_HOLDTEST_PATH"

// Main runs m's tests or, in a process [Hold] started, holds the file open
// until its standard input closes.
func Main(m *testing.M) {
	if path := os.Getenv(env); path != "" {
		os.Exit(holdOpen(path))
	}
	os.Exit(m.Run())
}

func holdOpen(path string) int {
	s, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		return 3
	}
	defer s.Close()
	if err := s.Ping(context.Background()); err != nil {
		return 4
	}
	os.Stdout.WriteString("open\n")
	os.Stdin.Read(make([]byte, 1)) // until the parent closes stdin
	return 0
}

// Hold opens the store at path in another process and returns once it is
// open; release closes it there and waits for the process to end,
// reporting how it ended.
func Hold(tb testing.TB, path string) (release func() error) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "open\n" {
		cmd.Process.Kill()
		cmd.Wait()
		tb.Fatalf("holdtest: the holding process said %q (%v); is holdtest.Main called from TestMain?", buf, err)
	}
	return func() error {
		stdin.Close()
		return cmd.Wait()
	}
}
