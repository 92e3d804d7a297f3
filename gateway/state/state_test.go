package state

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

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
	w, r, err := sqlitestore.OpenDB(filepath.Join(dir, "gateway-feed.db"))
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
		wantPos, wantInbox := "v1.3.4.5", 2
		if round == 1 {
			wantPos, wantInbox = "v1.3.4.7", 3 // what round 0 applied
		}
		if got, err := db.Position(ctx, "haifa-park"); err != nil || got != wantPos {
			t.Errorf("round %d: position = %q, %v; want %q", round, got, err, wantPos)
		}
		evs, err := db.After(ctx, 0, 10)
		if err != nil || len(evs) != wantInbox || evs[0].Park != "haifa-park" || string(evs[1].Event) != `{"n":2}` {
			t.Errorf("round %d: inbox = %+v, %v", round, evs, err)
		}
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
		if round == 0 {
			// The applied versions survive: an old version is not new.
			if fresh, err := db.Apply(ctx, "haifa-park", "v1.3.4.6", "prj_1", 3, []byte(`{}`)); err != nil || fresh {
				t.Errorf("re-apply of version 3 = %v, %v; want not fresh", fresh, err)
			}
			// The inbox sequence carries on after the old rows.
			if fresh, err := db.Apply(ctx, "haifa-park", "v1.3.4.7", "prj_1", 4, []byte(`{"n":3}`)); err != nil || !fresh {
				t.Errorf("apply of version 4 = %v, %v; want fresh", fresh, err)
			}
		}
		if head, err := db.Head(ctx); err != nil || head != 3 {
			t.Errorf("head = %d, %v; want 3", head, err)
		}
		db.Close()
	}
	w, r, err := sqlitestore.OpenDB(filepath.Join(dir, "gateway-feed.db"))
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
	if head, err := db.Head(ctx); err != nil || head != 0 {
		t.Errorf("head = %d, %v", head, err)
	}
	if pos, err := db.Position(ctx, "haifa-park"); err != nil || pos != "" {
		t.Errorf("position = %q, %v", pos, err)
	}
	if pos, err := db.WebhookPosition(ctx); err != nil || pos != "" {
		t.Errorf("webhook position = %q, %v", pos, err)
	}
	if hooks, err := db.Webhooks(ctx); err != nil || len(hooks) != 0 {
		t.Errorf("webhooks = %v, %v", hooks, err)
	}
}

func TestOpenRefusesAFileItCannotMigrate(t *testing.T) {
	dir := t.TempDir()
	w, r, err := sqlitestore.OpenDB(filepath.Join(dir, FileName))
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

// signalled reports whether ch is closed.
func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestApply(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := t.Context()
	steps := []struct {
		name      string
		peer      string
		eventID   string
		listingID string
		version   int64
		wantFresh bool
		wantHead  int64
	}{
		{"first version", "haifa-park", "e1", "prj_1", 1, true, 1},
		{"same version again", "haifa-park", "e2", "prj_1", 1, false, 1},
		{"newer version", "haifa-park", "e3", "prj_1", 2, true, 2},
		{"older version late", "haifa-park", "e4", "prj_1", 1, false, 2},
		{"same listing id at another park", "tlv-park", "t1", "prj_1", 1, true, 3},
		{"another listing", "haifa-park", "e5", "prj_2", 1, true, 4},
		{"a jump in versions", "haifa-park", "e6", "prj_1", 9, true, 5},
		{"between the jump", "haifa-park", "e7", "prj_1", 5, false, 5},
	}
	for _, s := range steps {
		sig := db.Signal()
		fresh, err := db.Apply(ctx, s.peer, s.eventID, s.listingID, s.version, []byte(`{"id":"`+s.eventID+`"}`))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if fresh != s.wantFresh {
			t.Errorf("%s: fresh = %v, want %v", s.name, fresh, s.wantFresh)
		}
		if signalled(sig) != s.wantFresh {
			t.Errorf("%s: signalled = %v, want %v", s.name, signalled(sig), s.wantFresh)
		}
		// The position moves with every event, new or not.
		if pos, err := db.Position(ctx, s.peer); err != nil || pos != s.eventID {
			t.Errorf("%s: position = %q, %v; want %q", s.name, pos, err, s.eventID)
		}
		if head, err := db.Head(ctx); err != nil || head != s.wantHead {
			t.Errorf("%s: head = %d, %v; want %d", s.name, head, err, s.wantHead)
		}
	}
	all, err := db.After(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, a := range all {
		if a.Seq != int64(i+1) {
			t.Errorf("inbox seq %d at %d", a.Seq, i)
		}
		got = append(got, a.Park+" "+string(a.Event))
	}
	want := []string{`haifa-park {"id":"e1"}`, `haifa-park {"id":"e3"}`, `tlv-park {"id":"t1"}`, `haifa-park {"id":"e5"}`, `haifa-park {"id":"e6"}`}
	if !slices.Equal(got, want) {
		t.Errorf("inbox = %v\nwant %v", got, want)
	}
	for _, tt := range []struct {
		after    int64
		limit    int
		wantSeqs []int64
	}{
		{0, 2, []int64{1, 2}},
		{2, 2, []int64{3, 4}},
		{4, 10, []int64{5}},
		{5, 10, nil},
		{99, 10, nil},
	} {
		evs, err := db.After(ctx, tt.after, tt.limit)
		var seqs []int64
		for _, e := range evs {
			seqs = append(seqs, e.Seq)
		}
		if err != nil || !slices.Equal(seqs, tt.wantSeqs) {
			t.Errorf("After(%d, %d) = %v, %v; want %v", tt.after, tt.limit, seqs, err, tt.wantSeqs)
		}
	}
}

func TestPositions(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := t.Context()
	must(t, db.SetPosition(ctx, "haifa-park", "v1.1.1.1"))
	must(t, db.SetPosition(ctx, "tlv-park", "v1.0.0.1"))
	must(t, db.SetPosition(ctx, "haifa-park", "v1.2.2.2"))
	if pos, _ := db.Position(ctx, "haifa-park"); pos != "v1.2.2.2" {
		t.Errorf("position = %q after a second SetPosition", pos)
	}
	must(t, db.ResetPosition(ctx, "haifa-park"))
	must(t, db.ResetPosition(ctx, "never-seen"))
	if pos, _ := db.Position(ctx, "haifa-park"); pos != "" {
		t.Errorf("position = %q after ResetPosition", pos)
	}
	if pos, _ := db.Position(ctx, "tlv-park"); pos != "v1.0.0.1" {
		t.Errorf("another peer's position = %q", pos)
	}
	if head, _ := db.Head(ctx); head != 0 {
		t.Errorf("SetPosition added to the inbox: head %d", head)
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
	if _, err := db.Apply(ctx, "haifa-park", "e1", "prj_1", 1, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	must(t, db.CreateWebhook(ctx, Webhook{ID: "wh_1", URL: "http://x.local", Secret: "s", Filter: "{}", Created: time.Now()}))
	db = reopen(t, db, dir)
	if fresh, err := db.Apply(ctx, "haifa-park", "e2", "prj_1", 1, []byte(`{}`)); err != nil || fresh {
		t.Errorf("re-apply after reopen = %v, %v; want not fresh", fresh, err)
	}
	if hooks, _ := db.Webhooks(ctx); len(hooks) != 1 {
		t.Errorf("webhooks after reopen = %v", hooks)
	}
}
