package sqlitefile_test

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile/sqlitefiletest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// These tests use a listing store as the file in use: it is the busiest
// writer of the park, and its change log says whether a copy is whole.

// A copy made while a writer commits is the store as of one commit: every
// write acknowledged before the copy started is in it, its by-sequence
// reads are whole, and its LastSeq is the newest change it holds.
func TestCopyToWhileWriting(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, err := sqlitestore.Open(ctx, filepath.Join(dir, "listings.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	if err := sqlitefile.CopyTo(ctx, s.Path(), dst); err != nil {
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
	if err := sqlitefile.CopyTo(ctx, s.Path(), dst); err == nil {
		t.Error("CopyTo over an existing file succeeded")
	}
	if err := sqlitefile.CopyTo(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "x.db")); err == nil {
		t.Error("CopyTo of a missing file succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("CopyTo created its missing source")
	}
}

// A file another process has open is in use; once it closes, it is not.
func TestInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "listings.db")
	s, err := sqlitestore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if used, err := sqlitefile.InUse(path); err != nil || used {
		t.Fatalf("InUse of a closed store = %v, %v", used, err)
	}
	release := sqlitefiletest.Hold(t, path)
	if used, err := sqlitefile.InUse(path); err != nil || !used {
		t.Errorf("InUse while another process has it open = %v, %v", used, err)
	}
	if err := release(); err != nil {
		t.Fatalf("the process holding the store: %v", err)
	}
	if used, err := sqlitefile.InUse(path); err != nil || used {
		t.Errorf("InUse after the other process closed it = %v, %v", used, err)
	}
}

// TestMain lets sqlitefiletest re-start this binary to hold a store open.
func TestMain(m *testing.M) { sqlitefiletest.Main(m) }
