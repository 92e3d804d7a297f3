package interests

import (
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/pkg/apierror"
)

func TestLimiter(t *testing.T) {
	var l limiter
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		if _, ok := l.take("b", 3, t0); !ok {
			t.Fatalf("take %d refused", i)
		}
	}
	wait, ok := l.take("b", 3, t0)
	if ok || wait < 20*time.Minute || wait > 21*time.Minute {
		t.Errorf("fourth: ok %v, wait %s; want refused for about 20m", ok, wait)
	}
	if _, ok := l.take("c", 3, t0); !ok {
		t.Errorf("another peer limited by b's bucket")
	}
	if _, ok := l.take("b", 3, t0.Add(21*time.Minute)); !ok {
		t.Errorf("refilled token refused")
	}
}

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
