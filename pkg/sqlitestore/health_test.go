package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/logbuf"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile/sqlitefiletest"
)

// fillStore makes a store at path holding n listings, closed and
// checkpointed, and returns the file's bytes.
func fillStore(t *testing.T, path string, n int) []byte {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.Create(t.Context(), testListing(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testListing(i int) *listing.Listing {
	now := time.Now().UTC()
	return &listing.Listing{ID: listing.NewID(listing.KindTalent, now.Add(time.Duration(i))), Park: "xian-hitech",
		Kind: listing.KindTalent, Version: 1, Title: fmt.Sprintf("人才 %d copper research 硅谷", i), Country: "CN",
		Visibility: "club", CreatedAt: now, UpdatedAt: now}
}

// A full disk is a clear answer: insufficient_storage, nothing of the
// write kept (listing and change log entry both absent), reads go on, the
// metric counts it, and writes succeed by themselves once there is room.
// The "disk" is the file's own page limit (PRAGMA max_page_count), which
// makes SQLite fail with the real SQLITE_FULL without root or a tmpfs.
func TestFullDiskIsInsufficientStorageAndRecovers(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 50 {
		if err := s.Create(t.Context(), testListing(i)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := s.LastSeq(t.Context())
	pages := limitPages(t, s, 0)
	var full error
	var lost *listing.Listing
	for i := 1000; i < 2000 && full == nil; i++ {
		lost = testListing(i)
		lost.Summary = strings.Repeat("填满 fill ", 200)
		full = s.Create(t.Context(), lost)
	}
	if !apierror.Is(full, apierror.InsufficientStorage) || apierror.HTTPStatus(apierror.CodeOf(full)) != 507 {
		t.Fatalf("write on a full disk = %v, want insufficient_storage", full)
	}
	if _, err := s.Get(t.Context(), lost.ID); !apierror.Is(err, apierror.NotFound) {
		t.Errorf("the refused listing is readable: %v", err)
	}
	last, _ := s.LastSeq(t.Context())
	if changes, err := s.Changes(t.Context(), before, 1000); err != nil || int64(len(changes)) != last-before {
		t.Fatalf("changes after the refused write: %d (%v), last seq %d", len(changes), err, last)
	}
	if p, err := s.Search(t.Context(), listing.Query{Text: "copper", Limit: 5}); err != nil || len(p.Results) == 0 {
		t.Errorf("search while full: %v", err)
	}
	if failing, writes := s.Health(); failing != nil || writes == nil {
		t.Errorf("health while full = %v, %v; want ready with failing writes", failing, writes)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("a full disk made the store not ready: %v", err)
	}
	limitPages(t, s, pages*4) // space is freed
	if err := s.Create(t.Context(), lost); err != nil {
		t.Fatalf("write after space came back: %v", err)
	}
	if _, writes := s.Health(); writes != nil {
		t.Errorf("writes still failing after a commit: %v", writes)
	}
}

// limitPages caps the store file at n pages (0: what it holds now).
func limitPages(t *testing.T, s *Store, n int64) int64 {
	t.Helper()
	n, err := s.SetMaxPages(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Damage found while serving makes the store not ready, with the reason;
// once the file checks out again, it is ready again by itself.
func TestDamageSeenWhileServingMakesTheStoreNotReady(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	fillStore(t, path, 300)
	var logs logbuf.Buffer
	s, err := Open(t.Context(), path, WithRecheckEvery(50*time.Millisecond),
		WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	good, _ := os.ReadFile(path)
	off := len(good) / 2 / 4096 * 4096
	if err := os.WriteFile(path, sqlitefiletest.Garble(good, off, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	s.dropIdleReaders() // a reader with the pages cached would not see it yet
	var readErr error
	for i := 0; i < 300 && readErr == nil; i++ {
		_, readErr = s.Search(t.Context(), listing.Query{Text: fmt.Sprintf("人才 %d", i), Limit: 100})
		if readErr == nil {
			_, readErr = s.Changes(t.Context(), 0, 1000)
		}
	}
	if !apierror.Is(readErr, apierror.Unavailable) {
		t.Fatalf("reading a damaged file = %v, want unavailable", readErr)
	}
	err = s.Ping(t.Context())
	if !apierror.Is(err, apierror.Unavailable) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Ping on a damaged store = %v", err)
	}
	// The re-check logs the damage with the whole advice (the file named
	// "store", as at start).
	s.recheck(t.Context(), 0)
	var advice []string
	for line := range strings.Lines(logs.String()) {
		var e struct {
			Msg      string
			WhatToDo string `json:"what_to_do"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "store is damaged" {
			advice = append(advice, e.WhatToDo)
		}
	}
	if len(advice) == 0 {
		t.Fatalf("the re-check of a damaged store logged no damage:\n%s", logs.String())
	}
	for _, a := range advice {
		if !strings.HasSuffix(a, "to begin with an empty store.") {
			t.Errorf("the re-check's advice is %q, want it to end \"to begin with an empty store.\"", a)
		}
	}
	if err := os.WriteFile(path, good, 0o600); err != nil { // restored
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Ping(t.Context()) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("still not ready after the file was restored: %v", err)
	}
}

// A check that does not finish within its bound lets the store open and
// goes on in the background; damage it finds then makes the store not
// ready.
func TestUnfinishedCheckGoesOnInTheBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	good := fillStore(t, path, 300)
	if err := os.WriteFile(path, sqlitefiletest.Garble(good, len(good)/2/4096*4096, 16<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path, WithCheckTimeout(time.Nanosecond))
	if err != nil {
		t.Fatalf("Open with a check too short to finish: %v", err)
	}
	defer s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Ping(t.Context()) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Ping(t.Context()); !apierror.Is(err, apierror.Unavailable) || !strings.Contains(err.Error(), "quick_check") {
		t.Fatalf("Ping after the background check = %v, want unavailable naming quick_check", err)
	}
}
