package interests

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

func TestViewShowsContactsOnlyWhileTheExchangeRuns(t *testing.T) {
	own, theirs := &Contact{Email: "own@example.org"}, &Contact{Email: "theirs@example.org"}
	for _, c := range []struct {
		box                 string
		status              Status
		wantOwn, wantTheirs bool
	}{
		{BoxSent, Sent, true, false}, {BoxSent, Delivered, true, false}, {BoxSent, Accepted, true, true},
		{BoxSent, Withdrawn, false, false}, {BoxSent, Expired, false, false}, {BoxSent, Declined, false, false},
		{BoxReceived, Delivered, true, false}, {BoxReceived, Accepted, true, true}, {BoxReceived, Withdrawn, false, false},
	} {
		in := &Interest{Box: c.box, Status: c.status, SenderContact: own, OwnerContact: theirs}
		if c.box == BoxReceived {
			in.SenderContact, in.OwnerContact = theirs, own
		}
		v := in.View()
		gotOwn, gotTheirs := v.SenderContact != nil, v.OwnerContact != nil
		if c.box == BoxReceived {
			gotOwn, gotTheirs = gotTheirs, gotOwn
		}
		if gotOwn != c.wantOwn || gotTheirs != c.wantTheirs {
			t.Errorf("%s %s: own %v theirs %v, want %v %v", c.box, c.status, gotOwn, gotTheirs, c.wantOwn, c.wantTheirs)
		}
	}
}

func TestValidation(t *testing.T) {
	if id := NewID(); !ValidID(id) {
		t.Errorf("NewID %q is not valid", id)
	}
	for _, id := range []string{"", "not-a-uuid", "E4EE7E70-52D6-4AB9-9D84-72A0D0F1E507", "e4ee7e70x52d6-4ab9-9d84-72a0d0f1e507"} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
	for _, c := range []struct {
		c     *Contact
		field string
	}{
		{nil, "sender_contact"}, {&Contact{Name: "x"}, "sender_contact"}, {&Contact{Email: "a@"}, "sender_contact.email"},
		{&Contact{Email: "Name <a@b.example>"}, "sender_contact.email"}, {&Contact{Phone: "call me"}, "sender_contact.phone"},
		{&Contact{Phone: "+-"}, "sender_contact.phone"},
	} {
		err := c.c.validate("sender_contact")
		if err == nil || !containsField(err, c.field) {
			t.Errorf("%+v: %v, want an error naming %s", c.c, err, c.field)
		}
	}
	if err := (&Contact{Email: "a@b.example", Phone: "+86 (28) 1234-5678"}).validate("c"); err != nil {
		t.Errorf("good contact: %v", err)
	}
}

func containsField(err error, field string) bool {
	return err != nil && apierror.Public(err).Field == field
}

// replicas returns n Services of park "xian" over one state file, each
// with its own connection to it, as gateway replicas sharing a state
// would be; the listings they hold and see are visible to every park.
func replicas(t *testing.T, n int, clock func() time.Time) []*Service {
	t.Helper()
	dir := t.TempDir()
	var out []*Service
	for range n {
		db, err := state.Open(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out = append(out, &Service{Park: "xian", State: db, RatePerHour: 3, Now: clock,
			Index: clubIndex{}, Listings: visible{}, PeerURL: func(p string) (string, bool) { return "http://" + p, p != "xian" }})
	}
	return out
}

// visible holds every listing asked for, shared with the club (in the
// club index: a project).
type visible struct{}

func (visible) Get(_ context.Context, k listing.Kind, id string) (*listing.Listing, error) {
	return &listing.Listing{ID: id, Kind: k, Title: "A listing", Visibility: listing.Club}, nil
}

type clubIndex struct{}

func (clubIndex) Get(_ context.Context, _, id string) (*listing.Listing, error) {
	return visible{}.Get(context.Background(), listing.KindProject, id)
}

func message(t0 time.Time) Message {
	return Message{ID: NewID(), Listing: ListingRef{Park: "xian", Kind: listing.KindProject, ID: listing.NewID(listing.KindProject, t0)},
		Message: "interested", Organization: Organization{Name: "Chengdu office"}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

// TestRateLimitSharedByReplicas: two replicas over one state count one
// peer's new interests together; the one over the limit is refused at
// either, with the wait until the oldest leaves the hour; another peer
// has its own count; an hour on, the peer is taken again.
func TestRateLimitSharedByReplicas(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	now := t0
	rs := replicas(t, 2, func() time.Time { return now })
	ctx := t.Context()
	for i, r := range []*Service{rs[0], rs[1], rs[0]} {
		now = t0.Add(time.Duration(i) * time.Minute)
		if _, created, err := r.Receive(ctx, "chengdu", message(t0)); err != nil || !created {
			t.Fatalf("interest %d at replica %d: created %v, %v", i, i%2, created, err)
		}
	}
	now = t0.Add(10 * time.Minute)
	for i, r := range rs {
		_, _, err := r.Receive(ctx, "chengdu", message(t0))
		var limited *RateLimitedError
		if !errors.As(err, &limited) {
			t.Fatalf("fourth at replica %d: %v, want refused over the rate", i, err)
		}
		if want := 50 * time.Minute; limited.RetryAfter != want {
			t.Errorf("fourth at replica %d: retry after %s, want %s (the first leaves the hour)", i, limited.RetryAfter, want)
		}
	}
	if _, _, err := rs[1].Receive(ctx, "haifa", message(t0)); err != nil {
		t.Errorf("another peer limited by chengdu's count: %v", err)
	}
	now = t0.Add(time.Hour + time.Second)
	if _, _, err := rs[1].Receive(ctx, "chengdu", message(now)); err != nil {
		t.Errorf("an hour after the first: %v, want taken", err)
	}
	if _, _, err := rs[0].Receive(ctx, "chengdu", message(now)); err == nil {
		t.Errorf("a second one while two of the hour are still in the window was taken")
	}
}

// TestIdempotencyKeySharedByReplicas: a send retried with its key at
// another replica answers the interest the first made; a changed body
// with the key is a conflict naming Idempotency-Key; another principal's
// same key is its own; a malformed key is refused naming it.
func TestIdempotencyKeySharedByReplicas(t *testing.T) {
	rs := replicas(t, 2, nil)
	ctx := t.Context()
	req := SendRequest{Listing: ListingRef{Park: "chengdu", Kind: "projects", ID: listing.NewID(listing.KindProject, time.Now())},
		Message: "interested", Organization: Organization{Name: "Xi'an office"}, SenderContact: &Contact{Email: "a@xian.example"}}
	key := "5f0c2a4e-3b1d-4a8e-9c7f-2d6b1e0a9f33"
	first, replayed, err := rs[0].Send(ctx, "alice", key, req)
	if err != nil || replayed {
		t.Fatalf("first send: replayed %v, %v", replayed, err)
	}
	again, replayed, err := rs[1].Send(ctx, "alice", `"`+key+`"`, req)
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("again at the other replica: %+v replayed %v, %v; want %s replayed", again, replayed, err, first.ID)
	}
	sent, err := rs[1].List(ctx, ListRequest{Box: BoxSent})
	if err != nil || len(sent) != 1 {
		t.Fatalf("sent box: %d interests, %v; want 1", len(sent), err)
	}
	changed := req
	changed.Message = "very interested"
	if _, _, err := rs[1].Send(ctx, "alice", key, changed); !apierror.Is(err, apierror.Conflict) || !containsField(err, "Idempotency-Key") {
		t.Errorf("changed body, same key: %v, want a conflict naming Idempotency-Key", err)
	}
	if other, replayed, err := rs[0].Send(ctx, "bob", key, req); err != nil || replayed || other.ID == first.ID {
		t.Errorf("bob's same key: replayed %v, %v; want a new interest", replayed, err)
	}
	for _, bad := range []string{"", `""`, "with space", string(make([]byte, MaxKey+1)), "ключ"} {
		if bad == "" {
			continue // no key: no idempotency
		}
		if _, _, err := rs[0].Send(ctx, "alice", bad, req); !containsField(err, "Idempotency-Key") {
			t.Errorf("key %q: %v, want an error naming Idempotency-Key", bad, err)
		}
	}
}
