// Package listing holds the ParkMesh listing envelope shared by every
// service and gateway: the three kinds and their attributes, the controlled
// vocabularies, validation, identifiers, the search query, the entry of a
// changes read (Change, with its Audience) and the Store interface each
// service keeps its listings in.
package listing

import (
	"context"
	"slices"
	"sort"
	"time"
)

// Kind is one of the three listing kinds.
type Kind string

// The kinds. Each is served by its own service.
const (
	KindOrganization Kind = "organization"
	KindProject      Kind = "project"
	KindTalent       Kind = "talent"
)

// Kinds lists every kind in a stable order.
var Kinds = []Kind{KindOrganization, KindProject, KindTalent}

// IDPrefix returns the prefix of ids of kind k ("org", "prj", "tal").
func (k Kind) IDPrefix() string {
	switch k {
	case KindOrganization:
		return "org"
	case KindProject:
		return "prj"
	case KindTalent:
		return "tal"
	}
	return ""
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k.IDPrefix() != "" }

// KindOfID returns the kind encoded in an id's prefix.
func KindOfID(id string) (Kind, bool) {
	for _, k := range Kinds {
		if len(id) > 4 && id[:4] == k.IDPrefix()+"_" {
			return k, true
		}
	}
	return "", false
}

// Visibility says who outside the origin park may see a listing.
type Visibility string

// The visibilities.
const (
	// Private listings never leave their park.
	Private Visibility = "private"
	// Club listings are visible to every active peer.
	Club Visibility = "club"
	// Peers listings are visible only to the parks in ShareWith.
	Peers Visibility = "peers"
)

// Listing is the envelope common to organizations, projects and talent.
// ID, Park, Version, CreatedAt and UpdatedAt are set by the server; a client
// may echo them back (they are ignored) but never choose them.
type Listing struct {
	ID         string     `json:"id"`
	Park       string     `json:"park"`
	Kind       Kind       `json:"kind"`
	Title      string     `json:"title"`
	Summary    string     `json:"summary,omitempty"`
	Sectors    []string   `json:"sectors"`
	Tags       []string   `json:"tags,omitempty"`
	Country    string     `json:"country"`
	City       string     `json:"city,omitempty"`
	Seeking    []string   `json:"seeking,omitempty"`
	Offering   []string   `json:"offering,omitempty"`
	Visibility Visibility `json:"visibility"`
	ShareWith  []string   `json:"share_with,omitempty"`
	Version    int64      `json:"version"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	Attrs      Attrs      `json:"attrs"`
	// Match, on a search result of a text query only, says how well and
	// why the listing matched. It is never stored: writes drop it.
	Match *Match `json:"match,omitempty"`
}

// Match is how a search result matched its query. Scores come from one
// formula that uses no statistics of the collection (pkg/fulltext), so a
// query's scores compare across services and parks; a gateway merges
// ranked sources by them.
type Match struct {
	// Score grows with the query's concepts matched and how well (title
	// over body, adjacent over scattered, as typed over a synonym).
	Score float64 `json:"score"`
	// Snippet is a short excerpt of the listing's text showing the match.
	Snippet string `json:"snippet,omitempty"`
	// Highlights are the matched words in Snippet: [start, end) offsets
	// counted in Unicode code points, ascending, not overlapping.
	Highlights [][2]int `json:"highlights,omitempty"`
}

// Limits of a Match.
const (
	MaxMatchScore      = 100
	MaxSnippet         = 400 // code points
	MaxMatchHighlights = 64
)

// Attrs carries the kind-specific attributes. Only the fields of the
// listing's own kind may be set; Validate rejects the others.
type Attrs struct {
	// organization
	OrgType string `json:"org_type,omitempty"`
	Website string `json:"website,omitempty"`
	Founded int    `json:"founded,omitempty"`
	Size    string `json:"size,omitempty"`

	// project
	Stage             string   `json:"stage,omitempty"`
	TRL               int      `json:"trl,omitempty"`
	FundingAsk        *Money   `json:"funding_ask,omitempty"`
	OwnerOrg          string   `json:"owner_org,omitempty"`
	LandingPreference []string `json:"landing_preference,omitempty"`

	// talent
	Expertise       []string `json:"expertise,omitempty"`
	Languages       []string `json:"languages,omitempty"`
	Availability    []string `json:"availability,omitempty"`
	Affiliation     string   `json:"affiliation,omitempty"`
	YearsExperience int      `json:"years_experience,omitempty"`
	Contact         *Contact `json:"contact,omitempty"`
	Consent         *Consent `json:"consent,omitempty"`
}

// Money is an amount in a currency (ISO 4217 code).
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Contact is a person's personal contact data. It leaves the park only when
// Consent.ShareContact is true.
type Contact struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Consent records what a person agreed to share.
type Consent struct {
	ShareContact bool `json:"share_contact"`
}

// VisibleTo reports whether a peer park may see l.
func (l *Listing) VisibleTo(peer string) bool {
	switch l.Visibility {
	case Club:
		return true
	case Peers:
		for _, p := range l.ShareWith {
			if p == peer {
				return true
			}
		}
	}
	return false
}

// ForPeers returns a copy of l fit to leave the park: personal contact data
// is removed unless the person consented to share it.
func (l *Listing) ForPeers() *Listing {
	c := *l
	if c.Attrs.Contact != nil && (c.Attrs.Consent == nil || !c.Attrs.Consent.ShareContact) {
		c.Attrs.Contact = nil
	}
	return &c
}

// Op is what happened to a listing in a change log entry.
type Op string

// The change operations.
const (
	OpCreated Op = "created"
	OpUpdated Op = "updated"
	OpDeleted Op = "deleted"
)

// Audience is who could see any version of a listing, ever: the union of
// the visibility of every version it had. A changes read carries it so a
// feed can tell a withdrawal (the listing is gone, or no longer visible) to
// exactly the parks that could see it before, and to no one else.
type Audience struct {
	Club  bool     `json:"club,omitempty"`
	Parks []string `json:"parks,omitempty"` // sorted, unique
}

// Includes reports whether peer could see some version: the listing was
// club-wide once, or shared with peer.
func (a Audience) Includes(peer string) bool {
	return a.Club || slices.Contains(a.Parks, peer)
}

// With returns a widened by l's visibility: a private listing adds no one,
// a club one sets Club, a peers one adds its ShareWith. a is not modified.
func (a Audience) With(l *Listing) Audience {
	switch l.Visibility {
	case Club:
		a.Club = true
	case Peers:
		parks := make([]string, 0, len(a.Parks)+len(l.ShareWith))
		parks = append(parks, a.Parks...)
		parks = append(parks, l.ShareWith...)
		a.Parks = sortedUnique(parks)
	}
	return a
}

// sortedUnique sorts s in place and drops repeats; nil when empty.
func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

// Change is one entry of a changes read of current state (CouchDB's
// by-sequence index): a listing's latest change after a position. Each
// listing appears once, at the sequence of its latest change; no earlier
// version of it is kept for the read to return.
type Change struct {
	// Seq is the sequence of the listing's latest change: strictly
	// increasing across a service's changes and never reused.
	Seq int64 `json:"seq"`
	// Op is OpDeleted for a tombstone; else OpCreated when the latest
	// change is the creation (FirstSeq == Seq), else OpUpdated.
	Op        Op     `json:"op"`
	Park      string `json:"park"`
	Kind      Kind   `json:"kind"`
	ListingID string `json:"listing_id"`
	// Version is the listing's version; for a tombstone, the last version
	// + 1 (as Store.Delete numbers a delete).
	Version int64 `json:"version"`
	// At is the time of the latest change.
	At time.Time `json:"at"`
	// FirstSeq is the sequence of the listing's creation (in a club index:
	// of the Put that made it present).
	FirstSeq int64 `json:"first_seq"`
	// Listing is the current state; nil for a tombstone, which keeps no
	// content (no title, no contact data).
	Listing *Listing `json:"listing,omitempty"`
	// Audience is who could see any version of the listing, tombstones
	// included.
	Audience Audience `json:"audience"`
}

// Query is a search over a store's listings. Filters combine with AND; the
// values within Sectors, Seeking, Offering, Parks and Kinds combine with OR.
type Query struct {
	Text         string
	Sectors      []string
	Country      string
	Seeking      []string
	Offering     []string
	Stage        string // projects
	Availability string // talent
	OrgType      string // organizations
	UpdatedSince time.Time
	// VisibleTo, when set, keeps only listings that peer park may see.
	VisibleTo string
	// Parks keeps only listings whose origin park is one of these;
	// ExcludeParks drops those of these parks. A service's store holds one
	// park; a club index holds many.
	Parks        []string
	ExcludeParks []string
	// Kinds keeps only listings of these kinds.
	Kinds []Kind
	// CountParks asks for Page.ParkHits.
	CountParks bool
	// Facets names the facets (FacetNames) whose counts Page.Facets
	// should carry; none when empty. Like CountParks it changes no result.
	Facets []string
	Limit  int
	Cursor string
}

// Page is one page of search results. NextCursor is empty on the last page.
type Page struct {
	Results    []*Listing `json:"results"`
	NextCursor string     `json:"next_cursor"`
	// ParkHits, when the query asked for it (CountParks), is the number of
	// the query's matches per origin park, whatever the page; parks
	// without a match are absent.
	ParkHits map[string]int `json:"park_hits,omitempty"`
	// ParkHitsCapped is true when the query had more matches than a store
	// counts (the newest are counted): ParkHits are then lower bounds.
	ParkHitsCapped bool `json:"park_hits_capped,omitempty"`
	// Facets, when the query named some (Query.Facets), counts the
	// query's matches per value of each facet named, whatever the page.
	Facets FacetCounts `json:"facets,omitempty"`
	// FacetsCapped is true when the query had more matches than a store
	// counts (the newest are counted): Facets are then lower bounds.
	FacetsCapped bool `json:"facets_capped,omitempty"`
}

// Limits of a query.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Store keeps one service's listings, its by-sequence index and its change
// log. Every write updates the listing, its by-sequence row and appends its
// change log entry in one transaction. Implementations return
// *apierror.Error values: NotFound for unknown ids, PreconditionFailed when
// ifVersion does not match, Invalid (field "cursor") for a bad cursor.
type Store interface {
	// Create stores a new listing (fully formed by the caller) and appends
	// an OpCreated change. Conflict when the id is, or was, in use.
	Create(ctx context.Context, l *Listing) error
	// Get returns the listing with id, or NotFound.
	Get(ctx context.Context, id string) (*Listing, error)
	// Update replaces the listing l.ID. When ifVersion is non-zero it must
	// equal the stored version. The store sets l.Version (stored + 1),
	// l.CreatedAt and l.Park from the stored listing, and appends an
	// OpUpdated change.
	Update(ctx context.Context, l *Listing, ifVersion int64) error
	// Delete removes the listing id (ifVersion as in Update), leaving a
	// tombstone without content in the by-sequence index, appends an
	// OpDeleted change and returns the listing's final state.
	Delete(ctx context.Context, id string, ifVersion int64, at time.Time) (*Listing, error)
	// Search returns one page of listings matching q: ranked by relevance
	// when q.Text is set, newest first otherwise.
	Search(ctx context.Context, q Query) (*Page, error)
	// Changes reads the by-sequence index: up to limit listings whose
	// latest change has Seq > after, each once, in Seq order, live ones
	// with their current state and deleted ones as tombstones.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastSeq returns the newest sequence ever issued (0 if none), even
	// when the change log holding it was compacted.
	LastSeq(ctx context.Context) (int64, error)
	// SeqBefore returns the largest Seq in the by-sequence index whose
	// change was made before t (0 if none): reading after it yields every
	// listing changed from t on.
	SeqBefore(ctx context.Context, t time.Time) (int64, error)
	// Compact deletes the change log's history older than before and
	// returns how many entries went. The by-sequence index, the listings
	// and the tombstones are untouched, so Changes and LastSeq answer as
	// before.
	Compact(ctx context.Context, before time.Time) (int64, error)
	// ChangeSignal returns a channel closed at the next committed change.
	ChangeSignal() <-chan struct{}
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}
