package sqlitestore_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// A copy made while a writer commits is the store as of one commit: every
// write acknowledged before the copy started is in it, its by-sequence
// reads are whole, and its LastSeq is the newest change it holds.
func TestCopyToWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Create(ctx, storetest.NewProject("芯片 copy", time.Now().UTC())); err != nil {
				t.Error(err)
				return
			}
			acked.Add(1)
		}
	}()
	for acked.Load() < 50 {
		time.Sleep(5 * time.Millisecond)
	}
	before := acked.Load()
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := sqlitestore.CopyTo(ctx, s.Path(), dst); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	seq, err := sqlitestore.FileSeq(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sqlitestore.Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	changes, err := c.Changes(ctx, 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(changes)) < before {
		t.Errorf("copy holds %d listings, want at least the %d acknowledged before it", len(changes), before)
	}
	if got := changes[len(changes)-1].Seq; got != seq {
		t.Errorf("newest change in the copy = %d, FileSeq = %d", got, seq)
	}
	if err := sqlitestore.CopyTo(ctx, s.Path(), dst); err == nil {
		t.Error("CopyTo over an existing file succeeded")
	}
	if err := sqlitestore.CopyTo(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "x.db")); err == nil {
		t.Error("CopyTo of a missing file succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("CopyTo created its missing source")
	}
}

// After a restart mark, the next change is numbered past the base, the
// positions up to the backup point read as before, and the skipped range
// is recorded.
func TestMarkRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "listings.db")
	ctx := t.Context()
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Create(ctx, storetest.NewProject("芯片", time.Now().UTC())); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	base, err := sqlitestore.RestartBase(3, 7) // the replaced file had issued 7
	if err != nil {
		t.Fatal(err)
	}
	if want := 7 + sqlitestore.SeqJump; base != want {
		t.Fatalf("RestartBase(3, 7) = %d, want %d", base, want)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rs, err := sqlitestore.MarkRestart(ctx, path, base, at)
	if err != nil {
		t.Fatal(err)
	}
	if rs.After != 3 || rs.Base != base {
		t.Errorf("restart = %+v, want after 3, base %d", rs, base)
	}
	if _, err := sqlitestore.MarkRestart(ctx, path, base-1, at); err == nil {
		t.Error("moving the sequence back was accepted")
	}

	s, err = sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if last, _ := s.LastSeq(ctx); last != base {
		t.Errorf("LastSeq after the mark = %d, want %d", last, base)
	}
	if err := s.Create(ctx, storetest.NewProject("芯片 after", time.Now().UTC())); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Changes(ctx, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Seq != base+1 {
		t.Errorf("changes after the backup point = %+v, want one at %d", cs, base+1)
	}
	if cs, _ := s.Changes(ctx, 1, 10); len(cs) != 3 {
		t.Errorf("changes after 1 = %d, want 3 (two restored, one new)", len(cs))
	}
	got, err := s.Restarts(ctx)
	if err != nil || len(got) != 1 || got[0].After != 3 || got[0].Base != base || !got[0].At.Equal(at) {
		t.Errorf("Restarts = %+v, %v", got, err)
	}
	for _, c := range []struct {
		p    int64
		void bool
	}{{3, false}, {4, true}, {base, true}, {base + 1, false}} {
		if got := rs.Void(c.p); got != c.void {
			t.Errorf("Void(%d) = %v, want %v", c.p, got, c.void)
		}
	}
}

// A file another process has open is in use; once it closes, it is not.
func TestInUse(t *testing.T) {
	if os.Getenv("SQLITESTORE_HOLD") != "" {
		s, err := sqlitestore.Open(context.Background(), os.Getenv("SQLITESTORE_HOLD"))
		if err != nil {
			os.Exit(3)
		}
		s.Ping(context.Background())
		os.Stdout.WriteString("open\n")
		os.Stdin.Read(make([]byte, 1)) // until the parent closes stdin
		s.Close()
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "listings.db")
	s, err := sqlitestore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if used, err := sqlitestore.InUse(path); err != nil || used {
		t.Fatalf("InUse of a closed store = %v, %v", used, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInUse$")
	cmd.Env = append(os.Environ(), "SQLITESTORE_HOLD="+path)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "open\n" {
		t.Fatalf("helper said %q, %v", buf, err)
	}
	if used, err := sqlitestore.InUse(path); err != nil || !used {
		t.Errorf("InUse while another process has it open = %v, %v", used, err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if used, err := sqlitestore.InUse(path); err != nil || used {
		t.Errorf("InUse after the other process closed it = %v, %v", used, err)
	}
}
