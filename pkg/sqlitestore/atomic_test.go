package sqlitestore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
)

// A write whose change-log append fails leaves nothing behind: the listing
// row, its index entry and the log commit together or not at all.
func TestWriteIsAtomicWithItsChange(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	keep := storetest.NewProject("芯片 kept", now)
	if err := s.Create(t.Context(), keep); err != nil {
		t.Fatal(err)
	}
	// Make the outbox insert fail, as a full disk or a crash would.
	if _, err := s.write.Exec(`ALTER TABLE changes RENAME TO changes_away`); err != nil {
		t.Fatal(err)
	}
	lost := storetest.NewProject("芯片 lost", now)
	if err := s.Create(t.Context(), lost); err == nil {
		t.Fatal("create succeeded without a change log")
	}
	upd := *keep
	upd.Title = "芯片 changed"
	if err := s.Update(t.Context(), &upd, 0); err == nil {
		t.Fatal("update succeeded without a change log")
	}
	if _, err := s.Delete(t.Context(), keep.ID, 0, now); err == nil {
		t.Fatal("delete succeeded without a change log")
	}
	if _, err := s.write.Exec(`ALTER TABLE changes_away RENAME TO changes`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), lost.ID); !apierror.Is(err, apierror.NotFound) {
		t.Errorf("half-written create is visible: %v", err)
	}
	got, err := s.Get(t.Context(), keep.ID)
	if err != nil || got.Title != "芯片 kept" || got.Version != 1 {
		t.Errorf("failed update/delete changed the listing: %+v %v", got, err)
	}
	page, err := s.Search(t.Context(), listing.Query{Text: "芯片"})
	if err != nil || len(page.Results) != 1 || page.Results[0].ID != keep.ID {
		t.Errorf("index after failed writes: %+v %v", page, err)
	}
	if seq, _ := s.LastSeq(t.Context()); seq != 1 {
		t.Errorf("last seq = %d, want 1", seq)
	}
}
