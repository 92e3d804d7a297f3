package state

import (
	"errors"
	"testing"
	"time"
)

func TestInterestsOutboxAndEvents(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	row := &InterestRow{ID: "i1", Box: "sent", Peer: "xian-hitech", Status: "sent", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), Record: []byte(`{"id":"i1"}`)}
	write := func(id string, w InterestWrite) error {
		return db.UpdateInterest(ctx, id, func(cur *InterestRow) (InterestWrite, error) { return w, nil })
	}
	if err := write("i1", InterestWrite{Row: row, Audit: []InterestAudit{{At: t0, Action: "sent", Actor: "li", Fields: []string{"message"}}},
		Outbox: []InterestMessage{{Peer: "xian-hitech", Kind: "interest", Body: []byte(`{}`)}, {Peer: "xian-hitech", Kind: "status", Body: []byte(`{}`)}},
		Events: []InterestEvent{{ID: "i1/received", Event: []byte(`{"id":"e"}`)}}}); err != nil {
		t.Fatal(err)
	}
	// A function's error writes nothing; ErrUnchanged is no error.
	boom := errors.New("boom")
	if err := db.UpdateInterest(ctx, "i1", func(cur *InterestRow) (InterestWrite, error) {
		if cur == nil || cur.Status != "sent" {
			t.Errorf("current row %+v", cur)
		}
		return InterestWrite{}, boom
	}); !errors.Is(err, boom) {
		t.Errorf("UpdateInterest = %v, want boom", err)
	}
	if err := db.UpdateInterest(ctx, "i1", func(*InterestRow) (InterestWrite, error) { return InterestWrite{}, ErrUnchanged }); err != nil {
		t.Errorf("unchanged: %v", err)
	}
	// Only the oldest message of an interest is due; a claimed one is
	// leased, not claimed again until the lease runs out.
	got, err := db.ClaimInterestMessages(ctx, time.Now(), time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].Kind != "interest" {
		t.Fatalf("claim = %+v, %v; want the interest message only", got, err)
	}
	if again, _ := db.ClaimInterestMessages(ctx, time.Now(), time.Minute, 10); len(again) != 0 {
		t.Errorf("claimed again during its lease: %+v", again)
	}
	if n, _ := db.InterestOutboxDepth(ctx); n != 2 {
		t.Errorf("depth = %d, want 2", n)
	}
	if err := db.InterestMessageDone(ctx, got[0].Seq, 1, ""); err != nil {
		t.Fatal(err)
	}
	next, _ := db.ClaimInterestMessages(ctx, time.Now().Add(2*time.Minute), time.Minute, 10)
	if len(next) != 1 || next[0].Kind != "status" {
		t.Fatalf("after the first is done: %+v", next)
	}
	if err := db.InterestMessageFailed(ctx, next[0].Seq, 1, "peer unreachable", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	pending, _ := db.InterestOutbox(ctx, "i1")
	if len(pending) != 1 || pending[0].Attempts != 1 || pending[0].LastError != "peer unreachable" {
		t.Errorf("pending = %+v", pending)
	}
	// Cancelling drops what is left.
	if err := write("i1", InterestWrite{CancelOutbox: true}); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.InterestOutboxDepth(ctx); n != 0 {
		t.Errorf("depth after cancel = %d", n)
	}
	// Lists, expiry, audit.
	if l, _ := db.Interests(ctx, "sent", "", time.Time{}, 10); len(l) != 1 || l[0].ID != "i1" || !l[0].CreatedAt.Equal(t0) {
		t.Errorf("sent box = %+v", l)
	}
	if l, _ := db.Interests(ctx, "received", "", time.Time{}, 10); len(l) != 0 {
		t.Errorf("received box = %+v", l)
	}
	if ids, _ := db.InterestsExpiring(ctx, []string{"sent"}, t0.Add(2*time.Hour)); len(ids) != 1 {
		t.Errorf("expiring = %v", ids)
	}
	if ids, _ := db.InterestsExpiring(ctx, []string{"sent"}, t0); len(ids) != 0 {
		t.Errorf("expiring before its time = %v", ids)
	}
	if a, _ := db.InterestAuditOf(ctx, "i1"); len(a) != 1 || a[0].Action != "sent" || len(a[0].Fields) != 1 {
		t.Errorf("audit = %+v", a)
	}
	// Events are queued once for every webhook, and survive a reopen.
	if err := db.CreateWebhook(ctx, Webhook{ID: "w1", URL: "https://example.org/h", Secret: "s", Filter: "{}", Created: t0}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.QueueInterestEvents(ctx); n != 1 || err != nil {
		t.Errorf("queued %d, %v; want 1", n, err)
	}
	if n, _ := db.QueueInterestEvents(ctx); n != 0 {
		t.Errorf("queued again: %d", n)
	}
	db.Close()
	db = open(t, dir)
	if evs, _ := db.InterestEventsAfter(ctx, 0, 10); len(evs) != 1 || evs[0].ID != "i1/received" {
		t.Errorf("events = %+v", evs)
	}
	if n, _ := db.QueueInterestEvents(ctx); n != 0 {
		t.Errorf("queued again after reopen: %d", n)
	}
	if d, _ := db.Deliveries(ctx, "w1", ""); len(d) != 1 || d[0].EventID != "i1/received" {
		t.Errorf("deliveries = %+v", d)
	}
}
