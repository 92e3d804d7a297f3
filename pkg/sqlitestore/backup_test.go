package sqlitestore_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

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
