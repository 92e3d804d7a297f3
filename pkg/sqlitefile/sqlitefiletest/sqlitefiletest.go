// Package sqlitefiletest damages SQLite files and holds them open in
// another process, for tests of what must refuse a damaged file (the start
// check) or one in use (restore, the in-use check). The other process is
// the test binary itself, started again: a package using [Hold] calls
// [Main] from its TestMain.
package sqlitefiletest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
)

// env names the file the re-started test binary holds open.
const env = "PARKMESH_SQLITEFILETEST_HOLD"

// Main runs m's tests or, in a process [Hold] started, holds the file open
// until its standard input closes.
func Main(m *testing.M) {
	if path := os.Getenv(env); path != "" {
		os.Exit(holdOpen(path))
	}
	os.Exit(m.Run())
}

func holdOpen(path string) int {
	write, read, err := sqlitefile.OpenDB(path)
	if err != nil {
		return 3
	}
	defer write.Close()
	defer read.Close()
	var n int
	if err := read.QueryRowContext(context.Background(), "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		return 4
	}
	os.Stdout.WriteString("open\n")
	os.Stdin.Read(make([]byte, 1)) // until the parent closes stdin
	return 0
}

// Hold opens the SQLite file at path in another process, as a store does, and returns once it is
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
		tb.Fatalf("sqlitefiletest: the holding process said %q (%v); is sqlitefiletest.Main called from TestMain?", buf, err)
	}
	return func() error {
		stdin.Close()
		return cmd.Wait()
	}
}

// Garble returns a copy of b with n bytes from off overwritten by a
// pattern that is no page of SQLite's.
func Garble(b []byte, off, n int) []byte {
	c := append([]byte(nil), b...)
	for i := off; i < off+n && i < len(c); i++ {
		c[i] = byte(i*7 + 3)
	}
	return c
}
