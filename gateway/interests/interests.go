// Package interests holds expressions of interest across parks, as the
// Enterprise Europe Network's partnering does: staff of a sender park
// express interest in a peer's listing (a message, their organisation,
// what they offer); the sender's gateway keeps it in a durable outbox and
// delivers it to the owner park's gateway until acknowledged (idempotent
// by the interest's id, a UUID the sender makes); the owner's staff accept
// or decline and the answer travels back the same way. Nothing personal
// crosses with the interest: on acceptance the owner's contact for the
// listing (for talent only with the person's consent) goes to the sender,
// and the sender's contact to the owner; withdrawal or expiry ends that
// exchange. Both parks keep an audit trail of every step (who, when, which
// fields crossed — never their values) and emit CloudEvents
// (org.parkmesh.interest.received|answered|withdrawn).
//
// The status machine: sent → delivered → accepted | declined, and
// withdrawn (by the sender, from sent, delivered or accepted), expired
// (from sent, delivered or accepted, at expires_at), refused (the owner
// park refused to take it: the listing is not visible to the sender).
package interests

import (
	"crypto/rand"
	"encoding/hex"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Status is where an interest stands.
type Status string

// The statuses.
const (
	Sent      Status = "sent"      // queued at the sender park, not acknowledged yet
	Delivered Status = "delivered" // the owner park has it
	Accepted  Status = "accepted"  // contacts exchanged
	Declined  Status = "declined"
	Withdrawn Status = "withdrawn"
	Expired   Status = "expired"
	Refused   Status = "refused" // the owner park would not take it (see Reason)
)

// Statuses lists every status.
var Statuses = []Status{Sent, Delivered, Accepted, Declined, Withdrawn, Expired, Refused}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// open reports whether s still runs: it can be answered, withdrawn or
// expire.
func (s Status) open() bool { return s == Sent || s == Delivered }

// The boxes: an interest this park sent, or one it received.
const (
	BoxSent     = "sent"
	BoxReceived = "received"
)

// ListingRef names a listing of a park.
type ListingRef struct {
	Park string       `json:"park"`
	Kind listing.Kind `json:"kind"`
	ID   string       `json:"id"`
}

// Organization is the sender's organisation: a directory listing of the
// sender park (ListingID, with its Name filled in by the sender park), or
// free text (Name).
type Organization struct {
	ListingID string `json:"listing_id,omitempty"`
	Name      string `json:"name,omitempty"`
}

// Contact is a person's or an office's contact: personal data, which
// crosses to the other park only on acceptance.
type Contact struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// fields names the contact's fields that are set, prefixed, for the audit.
func (c *Contact) fields(prefix string) []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, f := range []struct{ name, v string }{{"name", c.Name}, {"email", c.Email}, {"phone", c.Phone}} {
		if f.v != "" {
			out = append(out, prefix+"."+f.name)
		}
	}
	return out
}

// Interest is an expression of interest as a park keeps it.
type Interest struct {
	ID           string       `json:"id"`
	Box          string       `json:"box"`
	SenderPark   string       `json:"sender_park"`
	OwnerPark    string       `json:"owner_park"`
	Listing      ListingRef   `json:"listing"`
	ListingTitle string       `json:"listing_title,omitempty"`
	Message      string       `json:"message"`
	Organization Organization `json:"organization"`
	Offer        string       `json:"offer,omitempty"`
	Status       Status       `json:"status"`
	// Reason is why the owner park refused the interest.
	Reason string `json:"reason,omitempty"`
	// Note is the owner's note with the answer; WithdrawNote the sender's
	// with a withdrawal.
	Note         string `json:"note,omitempty"`
	WithdrawNote string `json:"withdraw_note,omitempty"`
	// Who acted, park-local principals (token subjects) of this park; they
	// never cross to the other park.
	SentBy     string `json:"sent_by,omitempty"`
	OpenedBy   string `json:"opened_by,omitempty"`
	AnsweredBy string `json:"answered_by,omitempty"`
	WithdrawBy string `json:"withdrawn_by,omitempty"`

	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	OpenedAt    *time.Time `json:"opened_at,omitempty"`
	AnsweredAt  *time.Time `json:"answered_at,omitempty"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	ExpiresAt   time.Time  `json:"expires_at"`

	// SenderContact is the sender's contact: at the sender park from the
	// start, at the owner park once accepted. OwnerContact is the owner's
	// contact for the listing: at the owner park from the acceptance, at
	// the sender park once it arrives. Each is shown only while the
	// exchange runs (see View).
	SenderContact *Contact `json:"sender_contact,omitempty"`
	OwnerContact  *Contact `json:"owner_contact,omitempty"`

	// Delivery is the outbox's state for an interest whose messages are
	// not all acknowledged yet (not stored with the record).
	Delivery *Delivery `json:"delivery,omitempty"`
}

// Delivery is how the delivery of an interest's pending message goes.
type Delivery struct {
	Pending   int       `json:"pending"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	NextAt    time.Time `json:"next_at"`
}

// peer is the other park.
func (in *Interest) peer() string {
	if in.Box == BoxSent {
		return in.OwnerPark
	}
	return in.SenderPark
}

// View is the interest as the park's staff may see it: the other park's
// contact only while accepted, the park's own contact while the interest
// is open or accepted; nothing after withdrawal or expiry.
func (in *Interest) View() *Interest {
	v := *in
	own, theirs := &v.SenderContact, &v.OwnerContact
	if in.Box == BoxReceived {
		own, theirs = &v.OwnerContact, &v.SenderContact
	}
	if in.Status != Accepted {
		*theirs = nil
	}
	if !in.Status.open() && in.Status != Accepted {
		*own = nil
	}
	return &v
}

// Wire formats between gateways.

// Message is what POST /federation/v1/interests carries: nothing personal
// (no contact, no name of a person who acted).
type Message struct {
	ID           string       `json:"id"`
	Listing      ListingRef   `json:"listing"`
	Message      string       `json:"message"`
	Organization Organization `json:"organization"`
	Offer        string       `json:"offer,omitempty"`
	CreatedAt    time.Time    `json:"created_at"`
	ExpiresAt    time.Time    `json:"expires_at"`
}

// crossed names what a Message carries, for the audit.
func (m *Message) crossed() []string {
	out := []string{"id", "listing", "message"}
	if m.Organization.ListingID != "" {
		out = append(out, "organization.listing_id")
	}
	if m.Organization.Name != "" {
		out = append(out, "organization.name")
	}
	if m.Offer != "" {
		out = append(out, "offer")
	}
	return append(out, "created_at", "expires_at")
}

// Receipt answers a delivered Message.
type Receipt struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
}

// StatusMessage is what POST /federation/v1/interests/{id}/status
// carries: an answer from the owner park (accepted, with the owner's
// contact when there is one to share, and when the exchange ends; or
// declined), or a withdrawal from the sender park.
type StatusMessage struct {
	Status    Status     `json:"status"`
	Note      string     `json:"note,omitempty"`
	Contact   *Contact   `json:"contact,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	At        time.Time  `json:"at"`
}

// crossed names what a StatusMessage carries, for the audit.
func (m *StatusMessage) crossed() []string {
	out := []string{"status"}
	if m.Note != "" {
		out = append(out, "note")
	}
	out = append(out, m.Contact.fields("contact")...)
	if m.ExpiresAt != nil {
		out = append(out, "expires_at")
	}
	return out
}

// StatusAnswer answers a StatusMessage: the receiver's status now and,
// answering an acceptance the sender park took, the sender's contact.
type StatusAnswer struct {
	Status  Status   `json:"status"`
	Contact *Contact `json:"contact,omitempty"`
}

// Limits of the texts.
const (
	MaxMessage = 4000
	MaxOffer   = 2000
	MaxNote    = 2000
	MaxName    = 200
)

// NewID returns a random (version 4) UUID.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ValidID reports whether id is a UUID in its canonical lower-case form.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range id {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// text checks a free text field: at most max characters, valid UTF-8,
// required when min is 1.
func text(field, s string, min, max int) error {
	if !utf8.ValidString(s) {
		return apierror.InvalidField(field, "must be UTF-8 text")
	}
	n := utf8.RuneCountInString(strings.TrimSpace(s))
	if n < min {
		return apierror.InvalidField(field, "is required")
	}
	if utf8.RuneCountInString(s) > max {
		return apierror.InvalidField(field, "must be at most %d characters", max)
	}
	return nil
}

// validate checks a contact given by the park's staff.
func (c *Contact) validate(field string) error {
	if c == nil || c.Email == "" && c.Phone == "" {
		return apierror.InvalidField(field, "needs an email or a phone")
	}
	if err := text(field+".name", c.Name, 0, MaxName); err != nil {
		return err
	}
	if c.Email != "" {
		a, err := mail.ParseAddress(c.Email)
		if err != nil || a.Address != c.Email || len(c.Email) > 254 {
			return apierror.InvalidField(field+".email", "must be an email address")
		}
	}
	if c.Phone != "" {
		if len(c.Phone) > 40 || strings.Trim(c.Phone, "+0123456789 -().") != "" || strings.Trim(c.Phone, "+ -().") == "" {
			return apierror.InvalidField(field+".phone", "must be a phone number (digits, spaces, + - ( ) .)")
		}
	}
	return nil
}

// validateRef checks a listing reference.
func validateRef(field string, r ListingRef) error {
	if !listing.ValidParkID(r.Park) {
		return apierror.InvalidField(field+".park", "must be a park id")
	}
	if k, ok := listing.KindOfCollection(string(r.Kind)); ok {
		r.Kind = k
	}
	if !r.Kind.Valid() {
		return apierror.InvalidField(field+".kind", "must be organization, project or talent")
	}
	if !listing.ValidID(r.Kind, r.ID) {
		return apierror.InvalidField(field+".id", "is not an id of a %s", r.Kind)
	}
	return nil
}

// validate checks a Message from a peer: id a UUID, the listing one of
// self's, texts within their limits, times set.
func (m *Message) validate(self string) error {
	if !ValidID(m.ID) {
		return apierror.InvalidField("id", "must be a UUID in lower case")
	}
	if err := validateRef("listing", m.Listing); err != nil {
		return err
	}
	if m.Listing.Park != self {
		return apierror.InvalidField("listing.park", "must be this park, %s", self)
	}
	if err := text("message", m.Message, 1, MaxMessage); err != nil {
		return err
	}
	if err := text("offer", m.Offer, 0, MaxOffer); err != nil {
		return err
	}
	if err := m.Organization.validate("organization"); err != nil {
		return err
	}
	if m.CreatedAt.IsZero() || m.ExpiresAt.IsZero() || !m.ExpiresAt.After(m.CreatedAt) {
		return apierror.InvalidField("expires_at", "must be after created_at")
	}
	return nil
}

func (o *Organization) validate(field string) error {
	if o.ListingID == "" && strings.TrimSpace(o.Name) == "" {
		return apierror.InvalidField(field, "needs a listing_id (a directory listing of the sender park) or a name")
	}
	if o.ListingID != "" && !listing.ValidID(listing.KindOrganization, o.ListingID) {
		return apierror.InvalidField(field+".listing_id", "is not an organization id")
	}
	return text(field+".name", o.Name, 0, MaxName)
}
