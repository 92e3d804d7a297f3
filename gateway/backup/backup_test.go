package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/backup"
	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/listing/storetest"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile/sqlitefiletest"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

const park = "xian-hitech"

// node makes a data directory as a node leaves it: keys, the gateway's
// state, a club index and the three stores, the project store holding n
// listings. The stores are returned open (the caller's process is "the
// node"; InUse cannot see this process's own locks).
func node(t *testing.T, n int) (string, map[listing.Kind]*sqlitestore.Store) {
	t.Helper()
	dir := t.TempDir()
	if _, err := parkkey.Init(dir, park); err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	ix, err := sqlitestore.Open(t.Context(), filepath.Join(dir, clubindex.FileName))
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	stores := map[listing.Kind]*sqlitestore.Store{}
	for _, k := range listing.Kinds {
		s, err := sqlitestore.Open(t.Context(), filepath.Join(dir, sqlitestore.ServiceFileName(park, k)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[k] = s
	}
	for range n {
		create(t, stores[listing.KindProject])
	}
	return dir, stores
}

func create(t *testing.T, s *sqlitestore.Store) *listing.Listing {
	t.Helper()
	l := storetest.NewProject("芯片 backup", time.Now().UTC())
	l.Park = park
	if err := s.Create(context.Background(), l); err != nil {
		t.Error(err)
	}
	return l
}

func closeAll(stores map[listing.Kind]*sqlitestore.Store) {
	for _, s := range stores {
		s.Close()
	}
}

// Backup while a writer commits, restore into the same data directory
// after more writes: every listing acknowledged before the backup is
// back, the ones written after it are gone, the change log reads whole,
// the next change is numbered past the restart base, the skipped range is
// recorded for the feeds, and the club index is gone.
func TestBackupWhileWritingThenRestore(t *testing.T) {
	ctx := t.Context()
	dir, stores := node(t, 20)
	projects := stores[listing.KindProject]
	var (
		mu    sync.Mutex
		acked []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			l := create(t, projects)
			mu.Lock()
			acked = append(acked, l.ID)
			mu.Unlock()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "b")
	m, err := backup.Backup(ctx, dir, out, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	after := create(t, projects) // certainly after the backup
	issued, _ := projects.LastSeq(ctx)

	var point int64
	for _, f := range m.Files {
		if f.Role == backup.RolePrivateKey {
			t.Errorf("backup without --include-private-keys holds %s", f.Path)
		}
		if f.Kind == listing.KindProject {
			point = f.LastSeq
		}
		if f.Path == clubindex.FileName {
			t.Errorf("the club index is in the backup")
		}
	}
	if point < 20 || point >= issued {
		t.Fatalf("backup point %d, want between 20 and %d", point, issued)
	}

	// The node runs: a restore is refused. (This process's own locks are
	// invisible to it, so another process holds a store open.)
	release := sqlitefiletest.Hold(t, filepath.Join(dir, sqlitestore.ServiceFileName(park, listing.KindTalent)))
	closeAll(stores)
	if _, err := backup.Restore(ctx, out, dir, backup.Options{}); !errors.Is(err, backup.ErrRunning) {
		t.Fatalf("restore while a store is open = %v, want ErrRunning", err)
	}
	if err := release(); err != nil {
		t.Fatalf("the process holding the store: %v", err)
	}

	res, err := backup.Restore(ctx, out, dir, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.KeysKept {
		t.Error("the data directory's keys were not kept")
	}
	if _, err := os.Stat(filepath.Join(dir, clubindex.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("club index still there after restore: %v", err)
	}
	rs := res.Restarts[listing.KindProject]
	if rs.After != point || rs.Base != issued+sqlitestore.SeqJump {
		t.Errorf("restart %+v, want after %d, base %d (above the replaced file's %d)", rs, point, issued+sqlitestore.SeqJump, issued)
	}

	s, err := sqlitestore.Open(ctx, filepath.Join(dir, sqlitestore.ServiceFileName(park, listing.KindProject)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cs, err := s.Changes(ctx, 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for i, c := range cs {
		held[c.ListingID] = true
		if i > 0 && c.Seq <= cs[i-1].Seq || c.Seq > point {
			t.Errorf("change %d at seq %d: out of order or past the backup point %d", i, c.Seq, point)
		}
	}
	for _, id := range before {
		if !held[id] {
			t.Errorf("listing %s, acknowledged before the backup, is not restored", id)
		}
	}
	if held[after.ID] {
		t.Errorf("listing %s, written after the backup, is restored", after.ID)
	}
	l := create(t, s)
	if cs, _ := s.Changes(ctx, point, 10); len(cs) != 1 || cs[0].ListingID != l.ID || cs[0].Seq != rs.Base+1 {
		t.Errorf("changes after the backup point = %+v, want only the new one at %d", cs, rs.Base+1)
	}
	db, err := state.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.FeedRestarts(ctx)
	if err != nil || len(got[listing.KindProject]) != 1 || got[listing.KindProject][0] != rs {
		t.Errorf("recorded restarts = %+v, %v; want %+v", got, err, rs)
	}
}

// A backup whose files changed after it was made is refused, and so is
// one with a file missing; the data directory is left alone.
func TestRestoreRefusesATamperedBackup(t *testing.T) {
	ctx := t.Context()
	dir, stores := node(t, 5)
	out := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Backup(ctx, dir, out, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	closeAll(stores)
	store := filepath.Join(out, sqlitestore.ServiceFileName(park, listing.KindProject))
	f, err := os.OpenFile(store, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("garbage"), 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before, _ := os.ReadFile(filepath.Join(dir, sqlitestore.ServiceFileName(park, listing.KindProject)))
	_, err = backup.Restore(ctx, out, dir, backup.Options{})
	if err == nil || !strings.Contains(err.Error(), "does not match the manifest") {
		t.Fatalf("restore of a tampered backup = %v, want a manifest mismatch", err)
	}
	now, _ := os.ReadFile(filepath.Join(dir, sqlitestore.ServiceFileName(park, listing.KindProject)))
	if string(now) != string(before) {
		t.Error("a refused restore changed the data directory")
	}
	if _, err := os.Stat(filepath.Join(dir, clubindex.FileName)); err != nil {
		t.Errorf("a refused restore removed the club index: %v", err)
	}

	os.Remove(filepath.Join(out, state.FileName))
	if _, err := backup.ReadManifest(out); err == nil {
		t.Error("a backup with a missing file was accepted")
	}
	os.Remove(filepath.Join(out, backup.ManifestName))
	if _, err := backup.ReadManifest(out); err == nil || !strings.Contains(err.Error(), "not a finished backup") {
		t.Errorf("a backup without its manifest = %v", err)
	}
}

// Into a new host: without private keys in the backup a restore is
// refused (the park could not sign); with them it brings the identity,
// and the restored node's public keys are the backup's.
func TestRestoreIntoAFreshDirectory(t *testing.T) {
	ctx := t.Context()
	dir, stores := node(t, 3)
	public := filepath.Join(t.TempDir(), "public")
	if _, err := backup.Backup(ctx, dir, public, backup.Options{}); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(t.TempDir(), "private")
	m, err := backup.Backup(ctx, dir, private, backup.Options{IncludePrivateKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	closeAll(stores)
	if !m.PrivateKeys {
		t.Error("manifest does not say it holds private keys")
	}
	if _, err := os.Stat(filepath.Join(public, backup.JWKSName)); err != nil {
		t.Errorf("no public key set in the backup: %v", err)
	}
	fresh := filepath.Join(t.TempDir(), "data")
	if _, err := backup.Restore(ctx, public, fresh, backup.Options{}); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("restore without keys anywhere = %v, want a refusal", err)
	}
	res, err := backup.Restore(ctx, private, fresh, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.KeysKept {
		t.Error("KeysKept on a fresh directory")
	}
	orig, _ := parkkey.Load(dir)
	ks, err := parkkey.Load(fresh)
	if err != nil || ks.Park() != park || ks.Current().ID != orig.Current().ID {
		t.Errorf("restored keys: %v, %v", ks, err)
	}
	if rs := res.Restarts[listing.KindProject]; rs.After != 3 || rs.Base != 3+sqlitestore.SeqJump {
		t.Errorf("restart on a new host = %+v, want after 3, base 3+SeqJump", rs)
	}
	other := t.TempDir()
	if _, err := parkkey.Init(other, "haifa-park"); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, private, other, backup.Options{}); err == nil || !strings.Contains(err.Error(), "haifa-park") {
		t.Errorf("restore into another park's directory = %v, want a refusal", err)
	}
}

// TestMain lets sqlitefiletest re-start this binary to hold a store open.
func TestMain(m *testing.M) { sqlitefiletest.Main(m) }
