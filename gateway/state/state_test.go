package state

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/sqlitefile"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

func open(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// oldFile makes dir/gateway-feed.db as the gateway did before numbered
// migrations (testdata/pre_migrations.sql, no schema_migrations table)
// and fills it with a little of everything.
func oldFile(t *testing.T, dir string) {
	t.Helper()
	schema, err := os.ReadFile("testdata/pre_migrations.sql")
	if err != nil {
		t.Fatal(err)
	}
	w, r, err := sqlitefile.OpenDB(filepath.Join(dir, "gateway-feed.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	exec(t, w, string(schema))
	exec(t, w, `INSERT INTO peer_positions(peer, last_event_id, updated_at) VALUES ('haifa-park', 'v1.3.4.5', 1)`)
	exec(t, w, `INSERT INTO applied(park, listing_id, version) VALUES ('haifa-park', 'prj_1', 3)`)
	exec(t, w, `INSERT INTO inbox(park, event, at) VALUES ('haifa-park', '{"n":1}', 1), ('tlv-park', '{"n":2}', 2)`)
	exec(t, w, `INSERT INTO webhooks(id, url, secret, filter, created) VALUES ('wh_1', 'http://crm.local/hook', 's3cret', '{"kinds":["project"]}', 1000)`)
	exec(t, w, `INSERT INTO deliveries(webhook, event_id, event, attempts, next_at, status, last_error, updated_at)
		VALUES ('wh_1', 'e1', '{}', 2, 0, 'pending', 'timeout', 5), ('wh_1', 'e0', '{}', 1, 0, 'delivered', '', 4)`)
	exec(t, w, `INSERT INTO meta(key, value) VALUES ('webhook_pos', 's1.1.2.3.2')`)
}

func TestOpenUpgradesAFileOfTheOldLayout(t *testing.T) {
	dir := t.TempDir()
	oldFile(t, dir)
	for round := range 2 { // the second open finds nothing to migrate
		db, err := Open(t.Context(), dir)
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		ctx := t.Context()
		hooks, err := db.Webhooks(ctx)
		if err != nil || len(hooks) != 1 || hooks[0].ID != "wh_1" || hooks[0].Secret != "s3cret" || hooks[0].Filter != `{"kinds":["project"]}` {
			t.Errorf("webhooks = %+v, %v", hooks, err)
		}
		ds, err := db.Deliveries(ctx, "wh_1", "")
		if err != nil || len(ds) != 2 || ds[1].EventID != "e1" || ds[1].Attempts != 2 || ds[1].LastError != "timeout" {
			t.Errorf("deliveries = %+v, %v", ds, err)
		}
		if pos, err := db.WebhookPosition(ctx); err != nil || pos != "s1.1.2.3.2" {
			t.Errorf("webhook position = %q, %v", pos, err)
		}
		// The inbox of full peer events (every past version) is gone.
		for _, table := range []string{"inbox", "applied", "peer_positions"} {
			var n int
			if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = ?`, table).Scan(&n); err != nil || n != 0 {
				t.Errorf("round %d: table %s still there (%d, %v)", round, table, n, err)
			}
		}
		db.Close()
	}
	w, r, err := sqlitefile.OpenDB(filepath.Join(dir, "gateway-feed.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	var names []string
	rows, err := r.QueryContext(t.Context(), `SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	want, _ := migrations.ReadDir("migrations")
	if len(names) != len(want) || len(names) == 0 || names[0] != "migrations/0001_feed_and_webhooks.sql" {
		t.Errorf("recorded migrations %v, want each of %d once", names, len(want))
	}
}

func TestOpenCreatesAFreshFile(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Errorf("no state file: %v", err)
	}
	ctx := t.Context()
	if pos, err := db.WebhookPosition(ctx); err != nil || pos != "" {
		t.Errorf("webhook position = %q, %v", pos, err)
	}
	if hooks, err := db.Webhooks(ctx); err != nil || len(hooks) != 0 {
		t.Errorf("webhooks = %v, %v", hooks, err)
	}
}

func TestOpenRefusesAFileItCannotMigrate(t *testing.T) {
	dir := t.TempDir()
	w, r, err := sqlitefile.OpenDB(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	// A table of the same name but another shape: the migration's index
	// on deliveries(status, next_at) cannot be built.
	exec(t, w, `CREATE TABLE deliveries (id INTEGER PRIMARY KEY)`)
	w.Close()
	r.Close()
	if db, err := Open(t.Context(), dir); err == nil {
		db.Close()
		t.Fatal("Open succeeded on a file whose deliveries table has another shape")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// reopen closes db and opens dir again: what was written is durable.
func reopen(t *testing.T, db *DB, dir string) *DB {
	t.Helper()
	must(t, db.Close())
	return open(t, dir)
}

func TestStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	ctx := t.Context()
	must(t, db.CreateWebhook(ctx, Webhook{ID: "wh_1", URL: "http://x.local", Secret: "s", Filter: "{}", Created: time.Now()}))
	db = reopen(t, db, dir)
	if hooks, _ := db.Webhooks(ctx); len(hooks) != 1 {
		t.Errorf("webhooks after reopen = %v", hooks)
	}
}

// The gateway's state is checked at start as every store is: a damaged
// file or one the data directory held going missing is refused, naming
// the file; AllowEmpty begins empty where it was missing.
func TestOpenRefusesDamagedOrLostState(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	path := filepath.Join(dir, FileName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	copy(bad, "not a database at all, garbage")
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), dir, sqlitefile.AllowEmpty(true)); err == nil ||
		!strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "gateway state") {
		t.Fatalf("damaged state: %v", err)
	}
	os.Remove(path)
	if _, err := Open(t.Context(), dir); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("lost state: %v", err)
	}
	db, err = Open(t.Context(), dir, sqlitefile.AllowEmpty(true))
	if err != nil {
		t.Fatalf("lost state with AllowEmpty: %v", err)
	}
	db.Close()
}

func TestFeedRestartsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	db := open(t, dir)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	r := sqlitestore.Restart{After: 100, Base: 100 + sqlitestore.SeqJump, At: at}
	for range 2 { // recorded twice, kept once
		if err := db.RecordFeedRestart(ctx, listing.KindProject, r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db = open(t, dir)
	got, err := db.FeedRestarts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[listing.KindProject]) != 1 || got[listing.KindProject][0] != r {
		t.Errorf("FeedRestarts = %+v, want one project restart %+v", got, r)
	}
}
