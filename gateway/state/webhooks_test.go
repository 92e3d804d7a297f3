package state

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestWebhooks(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := t.Context()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	hooks := []Webhook{
		{ID: "wh_b", URL: "http://b.local/hook", Secret: "sb", Filter: `{"kinds":["talent"]}`, Created: t0.Add(time.Minute)},
		{ID: "wh_a", URL: "http://a.local/hook", Secret: "sa", Filter: `{}`, Created: t0},
	}
	for _, h := range hooks {
		must(t, db.CreateWebhook(ctx, h))
	}
	if err := db.CreateWebhook(ctx, hooks[0]); err == nil {
		t.Error("a second webhook with the same id was stored")
	}
	got, err := db.Webhooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Webhook{hooks[1], hooks[0]} // oldest first
	if !slices.Equal(got, want) {
		t.Errorf("webhooks = %+v\nwant %+v", got, want)
	}
	if err := db.DeleteWebhook(ctx, "wh_none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete of an unknown webhook = %v, want ErrNotFound", err)
	}
	must(t, db.DeleteWebhook(ctx, "wh_b"))
	if err := db.DeleteWebhook(ctx, "wh_b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	if got, _ := db.Webhooks(ctx); !slices.Equal(got, []Webhook{hooks[1]}) {
		t.Errorf("after delete: %+v", got)
	}
}

func dueIDs(t *testing.T, db *DB, now time.Time, limit int) []string {
	t.Helper()
	ds, err := db.DueDeliveries(t.Context(), now, limit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.EventID)
	}
	return out
}

func TestDeliveryQueue(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := t.Context()
	must(t, db.CreateWebhook(ctx, Webhook{ID: "wh_1", URL: "http://one.local", Secret: "s1", Filter: "{}", Created: time.Now()}))
	must(t, db.CreateWebhook(ctx, Webhook{ID: "wh_2", URL: "http://two.local", Secret: "s2", Filter: "{}", Created: time.Now()}))
	must(t, db.Enqueue(ctx, []Queued{
		{Webhook: "wh_1", EventID: "e1", Event: []byte(`{"n":1}`)},
		{Webhook: "wh_2", EventID: "e1", Event: []byte(`{"n":1}`)},
		{Webhook: "wh_1", EventID: "e2", Event: []byte(`{"n":2}`)},
		{Webhook: "wh_1", EventID: "e3", Event: []byte(`{"n":3}`)},
	}, "s1.0.0.3.0"))
	if pos, err := db.WebhookPosition(ctx); err != nil || pos != "s1.0.0.3.0" {
		t.Errorf("webhook position = %q, %v", pos, err)
	}
	// An empty batch still moves the position.
	must(t, db.Enqueue(ctx, nil, "s1.0.0.4.0"))
	if pos, _ := db.WebhookPosition(ctx); pos != "s1.0.0.4.0" {
		t.Errorf("webhook position = %q after an empty batch", pos)
	}

	now := time.Now().Add(time.Second)
	ds, err := db.DueDeliveries(ctx, now, 10)
	if err != nil || len(ds) != 4 {
		t.Fatalf("due = %+v, %v", ds, err)
	}
	if d := ds[1]; d.EventID != "e1" || d.URL != "http://two.local" || d.Secret != "s2" || string(d.Event) != `{"n":1}` || d.Attempts != 0 {
		t.Errorf("second due delivery = %+v", d)
	}
	if got := dueIDs(t, db, now, 2); !slices.Equal(got, []string{"e1", "e1"}) {
		t.Errorf("due with limit 2 = %v", got)
	}
	if got := dueIDs(t, db, now.Add(-time.Hour), 10); len(got) != 0 {
		t.Errorf("due an hour ago = %v, want none", got)
	}

	id := map[string]int64{} // wh_1's deliveries by event
	for _, d := range ds {
		if d.URL == "http://one.local" {
			id[d.EventID] = d.ID
		}
	}
	retryAt := now.Add(time.Hour)
	must(t, db.MarkFailed(ctx, id["e1"], Pending, 1, "503 from receiver", retryAt, now))
	must(t, db.MarkFailed(ctx, id["e2"], Dead, 8, "gave up", now, now))
	must(t, db.MarkDelivered(ctx, id["e3"], now))

	if got := dueIDs(t, db, now, 10); !slices.Equal(got, []string{"e1"}) { // wh_2's only
		t.Errorf("due now = %v, want wh_2's e1 only", got)
	}
	if got := dueIDs(t, db, retryAt, 10); !slices.Equal(got, []string{"e1", "e1"}) {
		t.Errorf("due at the retry time = %v, want both e1", got)
	}

	type row struct {
		event, status, lastErr string
		attempts               int
	}
	rows := func(status string) []row {
		t.Helper()
		ds, err := db.Deliveries(ctx, "wh_1", status)
		if err != nil {
			t.Fatal(err)
		}
		out := []row{}
		for _, d := range ds {
			if d.Webhook != "wh_1" {
				t.Errorf("delivery of %s listed for wh_1", d.Webhook)
			}
			out = append(out, row{d.EventID, d.Status, d.LastError, d.Attempts})
		}
		return out
	}
	tests := []struct {
		status string
		want   []row
	}{
		{"", []row{{"e3", Delivered, "", 1}, {"e2", Dead, "gave up", 8}, {"e1", Pending, "503 from receiver", 1}}}, // newest first
		{Pending, []row{{"e1", Pending, "503 from receiver", 1}}},
		{Dead, []row{{"e2", Dead, "gave up", 8}}},
		{Delivered, []row{{"e3", Delivered, "", 1}}},
		{"bogus", []row{}},
	}
	for _, tt := range tests {
		if got := rows(tt.status); !slices.Equal(got, tt.want) {
			t.Errorf("Deliveries(wh_1, %q) = %v, want %v", tt.status, got, tt.want)
		}
	}
	pend, _ := db.Deliveries(ctx, "wh_1", Pending)
	if !pend[0].NextAt.Equal(retryAt.Truncate(time.Microsecond)) || !pend[0].UpdatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("next_at, updated_at = %v, %v; want %v, %v", pend[0].NextAt, pend[0].UpdatedAt, retryAt, now)
	}
	if ds, err := db.Deliveries(ctx, "wh_none", ""); err != nil || ds == nil || len(ds) != 0 {
		t.Errorf("deliveries of an unknown webhook = %#v, %v; want an empty list", ds, err)
	}

	// Deleting a webhook drops its queue.
	must(t, db.DeleteWebhook(ctx, "wh_2"))
	if got := dueIDs(t, db, retryAt, 10); !slices.Equal(got, []string{"e1"}) {
		t.Errorf("due after deleting wh_2 = %v, want wh_1's e1", got)
	}
	if ds, _ := db.Deliveries(ctx, "wh_2", ""); len(ds) != 0 {
		t.Errorf("wh_2's deliveries outlive it: %+v", ds)
	}
}

// Enqueue is all or nothing: a batch that cannot be stored whole leaves
// neither deliveries nor a moved position.
func TestEnqueueIsAtomic(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := t.Context()
	must(t, db.CreateWebhook(ctx, Webhook{ID: "wh_1", URL: "http://one.local", Secret: "s", Filter: "{}", Created: time.Now()}))
	must(t, db.Enqueue(ctx, nil, "s1.0.0.1.0"))
	// Make the second insert of the batch fail, as a full disk would.
	exec(t, db.write, `CREATE TRIGGER no_e2 BEFORE INSERT ON deliveries WHEN NEW.event_id = 'e2' BEGIN SELECT RAISE(ABORT, 'refused'); END`)
	err := db.Enqueue(ctx, []Queued{{Webhook: "wh_1", EventID: "e1", Event: []byte(`{}`)}, {Webhook: "wh_1", EventID: "e2", Event: []byte(`{}`)}}, "s1.0.0.3.0")
	if err == nil {
		t.Fatal("Enqueue succeeded though one insert failed")
	}
	if pos, _ := db.WebhookPosition(ctx); pos != "s1.0.0.1.0" {
		t.Errorf("position moved to %q by a failed batch", pos)
	}
	if ds, _ := db.Deliveries(ctx, "wh_1", ""); len(ds) != 0 {
		t.Errorf("a failed batch left %d deliveries", len(ds))
	}
}

func TestCreateWebhookUpTo(t *testing.T) {
	db := open(t, t.TempDir())
	ctx := t.Context()
	hook := func(i int) Webhook {
		return Webhook{ID: "wh_" + string(rune('a'+i)), URL: "http://x.example", Secret: "s", Filter: "{}", Created: time.Now()}
	}
	for i := range 3 {
		must(t, db.CreateWebhookUpTo(ctx, hook(i), 3))
	}
	if err := db.CreateWebhookUpTo(ctx, hook(3), 3); !errors.Is(err, ErrLimit) {
		t.Errorf("fourth webhook with a limit of 3: err = %v, want ErrLimit", err)
	}
	if got, _ := db.Webhooks(ctx); len(got) != 3 {
		t.Errorf("after the refused one: %d webhooks, want 3", len(got))
	}
	must(t, db.DeleteWebhook(ctx, "wh_a"))
	must(t, db.CreateWebhookUpTo(ctx, hook(3), 3)) // room again
	must(t, db.CreateWebhookUpTo(ctx, hook(4), 0)) // 0: no limit
}
