package peering

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/retry"
)

// Consul KV layout of a park's federation state. Every gateway replica of
// the park watches it, so a change made through one replica (a peering
// established or deleted) holds on all of them within a blocking query.
const (
	kvPeers  = "parkmesh/peers/"
	kvTokens = "parkmesh/peering-tokens/"
)

// Peer is an established peering: the other park's id, the gateway URL it
// advertises and its pinned public keys (kid → key, base64url).
type Peer struct {
	ID              string            `json:"id"`
	URL             string            `json:"url"`
	Keys            map[string]string `json:"keys"`
	EstablishedAt   time.Time         `json:"established_at"`
	KeysRefreshedAt time.Time         `json:"keys_refreshed_at,omitempty"`
	// DisplayName and Country are the peer's identity for people, as its
	// /.well-known/parkmesh.json says (learned after peering and
	// refreshed; absent until first read).
	DisplayName *DisplayName `json:"display_name,omitempty"`
	Country     string       `json:"country,omitempty"`
	// IdentityAt is when they were last read.
	IdentityAt time.Time `json:"identity_at,omitzero"`
}

func (p *Peer) key(kid string) ed25519.PublicKey {
	x, ok := p.Keys[kid]
	if !ok {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(x)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil
	}
	return ed25519.PublicKey(b)
}

func pinKeys(keys map[string]ed25519.PublicKey) map[string]string {
	out := map[string]string{}
	for kid, k := range keys {
		out[kid] = base64.RawURLEncoding.EncodeToString(k)
	}
	return out
}

// Store is the park's set of active peers, kept in Consul KV and
// mirrored in memory by a watch. Every record is signed with the park's key
// (see record.go) and verified on every read: one that is unsigned or
// wrongly signed is ignored, logged once per version and counted. While
// Consul is unreachable, or after it answered from a state it may not
// have caught up with (see Run), the last known set stays in force.
type Store struct {
	kv     *consulapi.KV
	client *http.Client
	logger *slog.Logger
	cfg    StoreConfig
	// refreshEvery rate-limits JWKS refreshes per peer.
	refreshEvery time.Duration
	// watchWait bounds one blocking query: at least this often the records
	// are verified again (and re-signed after a key rotation).
	watchWait time.Duration

	rejectedTotal *prometheus.CounterVec
	ignored       prometheus.Gauge

	// wmu orders this replica's writes of records with their local
	// effect: a write to Consul and its application here happen together,
	// so a deletion is never followed by the local effect of an update
	// that reached Consul before it (the peer would be trusted again here
	// until the watch answered).
	wmu sync.Mutex

	mu          sync.RWMutex
	peers       map[string]*Peer
	index       uint64
	synced      chan struct{}
	syncOnce    sync.Once
	lastRefresh map[string]time.Time
	listeners   []func()
	// rejected holds, per refused KV key, the version (ModifyIndex)
	// already logged and counted.
	rejected map[string]uint64
	// adopted is set once records of before signing were dealt with.
	adopted bool
	// floor is the Consul index of this store's latest own write: a
	// watch answer older than that predates the write and would undo it
	// (a peer just established dropped, one just deleted back for a
	// moment), so it is not applied.
	floor uint64
}

// StoreConfig is what a Store needs besides Consul.
type StoreConfig struct {
	// Keys returns the park's keys: the current one signs the records
	// written, every published one verifies those read. Required.
	Keys func() *parkkey.KeySet
	// Metrics, when set, registers the store's metrics.
	Metrics prometheus.Registerer
	// DataDir is the gateway's own directory: it remembers there that this
	// gateway has adopted the unsigned records of an earlier version (see
	// Store.Run). Empty: only Consul remembers it.
	DataDir string
}

// NewStore returns a store on the agent's KV; Run keeps it current.
func NewStore(cc *consulapi.Client, client *http.Client, logger *slog.Logger, cfg StoreConfig) *Store {
	s := &Store{
		kv: cc.KV(), client: client, logger: logger, cfg: cfg, refreshEvery: 30 * time.Second, watchWait: 30 * time.Second,
		peers: map[string]*Peer{}, synced: make(chan struct{}), lastRefresh: map[string]time.Time{},
		rejected: map[string]uint64{},
		rejectedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parkmesh_peer_records_rejected_total",
			Help: "Peer records in Consul KV ignored for their signature (unsigned, bad_signature, unknown_key, mismatch, malformed), once per record version.",
		}, []string{"reason"}),
		ignored: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parkmesh_peer_records_ignored",
			Help: "Peer records in Consul KV ignored at the last read because their signature did not verify.",
		}),
	}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(s.rejectedTotal, s.ignored)
	}
	return s
}

// OnChange registers f to run after every change of the peer set.
func (s *Store) OnChange(f func()) {
	s.mu.Lock()
	s.listeners = append(s.listeners, f)
	s.mu.Unlock()
}

// Synced is closed after the first successful read of the peer set.
func (s *Store) Synced() <-chan struct{} { return s.synced }

// Run watches the KV prefix with blocking queries until ctx ends.
//
// What it takes for the truth about the peer set: an answer from an agent
// that knows its cluster's leader, read in consistent mode (the leader
// confirms it still leads and has applied its log) whenever the answer
// before was not a normal one: at start, after any failed query, after an
// answer without a known leader, and after an index that went backwards
// (Consul's rule for blocking queries: start over from index 0). Until
// then the last known set stays in force, so an agent restarting (the
// query fails), electing a leader, or answering from a store it is still
// restoring never makes every peering look deleted. An agent that did lose
// its state (a -dev agent, a data directory wiped) and answers a
// consistent read with a leader is believed: keep the agent's data on disk.
func (s *Store) Run(ctx context.Context) {
	pause := retry.New(100*time.Millisecond, 2*time.Second)
	failing := ""   // why the watch is failing, logged once per spell
	confirm := true // the next answer must be a consistent read
	for ctx.Err() == nil {
		s.mu.RLock()
		idx := s.index
		s.mu.RUnlock()
		opts := &consulapi.QueryOptions{WaitIndex: idx, WaitTime: s.watchWait}
		if confirm {
			opts = &consulapi.QueryOptions{RequireConsistent: true}
		}
		pairs, meta, err := s.kv.List(kvPeers, opts.WithContext(ctx))
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case !meta.KnownLeader:
			why = "the agent knows no leader"
		case !confirm && meta.LastIndex < idx:
			// The store was reset or restored, or the newest record was
			// deleted: read it all again, consistently, before believing it
			// (paced, should an agent keep doing it).
			s.logger.Info("Consul KV index went backwards; reading the peer set again", "index", meta.LastIndex, "previous", idx)
			s.mu.Lock()
			s.index = 0
			s.mu.Unlock()
			confirm = true
			if !retry.Sleep(ctx, pause.NextBackOff()) {
				return
			}
			continue
		}
		if why != "" {
			if ctx.Err() != nil {
				return
			}
			if failing == "" {
				s.logger.Warn("peer watch failing; keeping the last known peers", "err", why, "peers", len(s.List()))
			}
			failing, confirm = why, true
			if !retry.Sleep(ctx, pause.NextBackOff()) {
				return
			}
			continue
		}
		if failing != "" {
			s.logger.Info("peer watch recovered", "peers_in_consul", len(pairs))
			failing = ""
		}
		if !confirm {
			pause.Reset() // a normal answer: the agent is well
		}
		if !s.adopted {
			if s.adoptUnsigned(ctx, pairs) {
				confirm = true // read what was written
				continue
			}
		}
		next, stale := s.verify(pairs)
		s.mu.Lock()
		if !confirm && meta.LastIndex < s.floor {
			// Sent before a write of ours and answered after it: wait for
			// the answer that holds the write.
			s.index = max(meta.LastIndex, 1)
			s.mu.Unlock()
			continue
		}
		s.floor = 0
		changed := !samePeers(s.peers, next)
		s.peers = next
		s.index = max(meta.LastIndex, 1) // a zero index would not block
		listeners := slices.Clone(s.listeners)
		s.mu.Unlock()
		confirm = false
		s.syncOnce.Do(func() { close(s.synced) })
		if changed {
			for _, f := range listeners {
				f()
			}
		}
		s.resign(ctx, stale)
	}
}

// verify returns the peers of the records that verify, and those of them
// signed by a key that is not the current one. A refused record is logged
// and counted once per version.
func (s *Store) verify(pairs consulapi.KVPairs) (map[string]*Peer, consulapi.KVPairs) {
	ks := s.cfg.Keys()
	next := map[string]*Peer{}
	var stale consulapi.KVPairs
	present := map[string]bool{}
	ignored := 0
	for _, kv := range pairs {
		present[kv.Key] = true
		p, kid, err := openPeer(ks, kv.Key, kv.Value)
		if err != nil {
			ignored++
			s.refuse(kv, reason(err))
			continue
		}
		next[p.ID] = p
		if kid != ks.Current().ID {
			stale = append(stale, kv)
		}
	}
	s.mu.Lock()
	for key := range s.rejected {
		if !present[key] {
			delete(s.rejected, key)
		}
	}
	s.mu.Unlock()
	s.ignored.Set(float64(ignored))
	return next, stale
}

// refuse logs and counts a refused record, once per version.
func (s *Store) refuse(kv *consulapi.KVPair, why string) {
	s.mu.Lock()
	seen := s.rejected[kv.Key] == kv.ModifyIndex
	s.rejected[kv.Key] = kv.ModifyIndex
	s.mu.Unlock()
	if seen {
		return
	}
	s.rejectedTotal.WithLabelValues(why).Inc()
	s.logger.Error("ignoring a peer record in Consul KV that is not signed by this park's key; it has no effect",
		"key", kv.Key, "reason", why, "modify_index", kv.ModifyIndex)
}

// resign writes the records signed by a retired key again, signed by the
// current one, before the retired key stops being published. Every replica
// may try: the write is a check-and-set on the version read, so one wins
// and the others read its record.
func (s *Store) resign(ctx context.Context, stale consulapi.KVPairs) {
	ks := s.cfg.Keys()
	for _, kv := range stale {
		p, _, err := openPeer(ks, kv.Key, kv.Value)
		if err != nil {
			continue
		}
		if err := s.rewrite(ctx, kv, p); err != nil {
			s.logger.Warn("re-signing a peer record with the current key failed; will retry", "peer", p.ID, "err", err)
			continue
		}
		s.logger.Info("peer record re-signed with the current key", "peer", p.ID, "kid", ks.Current().ID)
	}
}

// rewrite replaces the record kv (if it is still that version) with p,
// signed by the current key.
func (s *Store) rewrite(ctx context.Context, kv *consulapi.KVPair, p *Peer) error {
	v, err := sealPeer(s.cfg.Keys(), p)
	if err != nil {
		return err
	}
	_, _, err = s.kv.CAS(&consulapi.KVPair{Key: kv.Key, Value: v, ModifyIndex: kv.ModifyIndex}, (&consulapi.WriteOptions{}).WithContext(ctx))
	return err
}

// adoptedMarker is the KV key, and adoptedFile the file in the gateway's
// data directory, that record that the park's gateways sign their peer
// records: from then on an unsigned record is never adopted again.
const (
	adoptedMarker = "parkmesh/peer-records-signed"
	adoptedFile   = "peer-records-signed"
)

// adoptUnsigned deals, once, with the peer records of a gateway version
// that did not sign them. If neither this gateway's data directory nor
// Consul says that the park's records are signed already, the unsigned
// records present are the peerings that version established: they are
// signed now, and both marks are set. From then on an unsigned record is
// refused like any other, so a record written by hand later is never
// adopted (unless someone both deletes the mark in Consul and starts a
// gateway with a new data directory; docs/decisions.md). It reports
// whether it wrote anything.
func (s *Store) adoptUnsigned(ctx context.Context, pairs consulapi.KVPairs) bool {
	fileMark := ""
	if s.cfg.DataDir != "" {
		fileMark = filepath.Join(s.cfg.DataDir, adoptedFile)
	}
	done := func() {
		if fileMark != "" {
			if err := os.WriteFile(fileMark, []byte("peer records in Consul KV are signed\n"), 0o600); err != nil {
				s.logger.Warn("cannot record that peer records are signed", "file", fileMark, "err", err)
				return
			}
		}
		s.adopted = true
	}
	if fileMark != "" {
		if _, err := os.Stat(fileMark); err == nil {
			s.adopted = true
			return false
		}
	}
	mark, _, err := s.kv.Get(adoptedMarker, (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return false // tried again at the next answer
	}
	if mark != nil {
		done()
		return false
	}
	wrote := false
	for _, kv := range pairs {
		if _, _, err := open(s.cfg.Keys(), kv.Key, kv.Value); reason(err) != rejectUnsigned {
			continue
		}
		var p Peer
		if json.Unmarshal(kv.Value, &p) != nil || kvPeers+p.ID != kv.Key || !listing.ValidParkID(p.ID) {
			continue
		}
		if err := s.rewrite(ctx, kv, &p); err != nil {
			s.logger.Warn("signing a peer record of an earlier version failed; will retry", "peer", p.ID, "err", err)
			return wrote
		}
		wrote = true
		s.logger.Warn("signed the unsigned peer record of an earlier version (done once, at the upgrade); check the peers", "peer", p.ID, "url", p.URL)
	}
	v, _ := json.Marshal(map[string]any{"since": time.Now().UTC(), "by": s.cfg.Keys().Park()})
	if _, _, err := s.kv.CAS(&consulapi.KVPair{Key: adoptedMarker, Value: v}, (&consulapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return wrote
	}
	done()
	return wrote
}

func samePeers(a, b map[string]*Peer) bool {
	if len(a) != len(b) {
		return false
	}
	for id, p := range a {
		q, ok := b[id]
		if !ok {
			return false
		}
		pb, _ := json.Marshal(p)
		qb, _ := json.Marshal(q)
		if string(pb) != string(qb) {
			return false
		}
	}
	return true
}

// Get returns the active peer id.
func (s *Store) Get(id string) (*Peer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.peers[id]
	return p, ok
}

// List returns the active peers sorted by id.
func (s *Store) List() []*Peer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Peer, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Peer) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Put stores p, signed with the park's current key, and applies it locally
// at once (the watch confirms it).
func (s *Store) Put(ctx context.Context, p *Peer) error {
	_, err := s.put(ctx, p, 0)
	return err
}

// put is Put; with index > 0 a check-and-set that writes only over that
// version of the record, reporting false when it was changed meanwhile.
func (s *Store) put(ctx context.Context, p *Peer, index uint64) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b, err := sealPeer(s.cfg.Keys(), p)
	if err != nil {
		return false, err
	}
	pair, wo := &consulapi.KVPair{Key: kvPeers + p.ID, Value: b}, (&consulapi.WriteOptions{}).WithContext(ctx)
	if index > 0 {
		pair.ModifyIndex = index
		if ok, _, err := s.kv.CAS(pair, wo); err != nil || !ok {
			return false, err
		}
	} else if _, err := s.kv.Put(pair, wo); err != nil {
		return false, err
	}
	floor := s.writtenAt(ctx)
	s.mu.Lock()
	if s.behind(floor) {
		s.floor = max(s.floor, floor)
		s.peers[p.ID] = p
	}
	s.mu.Unlock()
	s.changed()
	return true, nil
}

// behind reports whether the peers last taken from the watch are older
// than a write of ours that the peer list held at index floor (0: unknown),
// so that the write is to be applied here now. When the watch already took
// an answer at floor or later, that answer holds the write, and maybe a
// newer one from elsewhere that applying ours would undo. s.mu is held.
func (s *Store) behind(floor uint64) bool { return floor == 0 || s.index < floor }

// update rewrites park's record, as Consul holds it now, with change, by
// check-and-set: a change made from what was fetched over the network
// meanwhile must not undo a write made in between (a deletion, a new URL
// or keys from a re-peering); a record changed in between is left alone
// for the next round. change reports false to leave the record as it is.
func (s *Store) update(ctx context.Context, park string, change func(cur *Peer) (*Peer, bool)) (bool, error) {
	kv, _, err := s.kv.Get(kvPeers+park, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil || kv == nil {
		return false, err
	}
	cur, _, err := openPeer(s.cfg.Keys(), kv.Key, kv.Value)
	if err != nil {
		return false, err
	}
	np, ok := change(cur)
	if !ok {
		return false, nil
	}
	return s.put(ctx, np, kv.ModifyIndex)
}

// writtenAt returns the index of the peer list as Consul answers it right
// after a write of ours: a watch answer at this index or later holds the
// write; one before it does not, and is not applied (see floor). 0 if
// Consul does not answer.
func (s *Store) writtenAt(ctx context.Context) uint64 {
	_, meta, err := s.kv.List(kvPeers, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return 0
	}
	return meta.LastIndex
}

// changed runs the change listeners (a write made here; other replicas
// learn of it through their watch).
func (s *Store) changed() {
	s.mu.RLock()
	listeners := slices.Clone(s.listeners)
	s.mu.RUnlock()
	for _, f := range listeners {
		f()
	}
}

// Delete removes the peer id; every replica stops trusting it as soon as
// its watch fires.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, ok := s.Get(id); !ok {
		return false, nil
	}
	if _, err := s.kv.Delete(kvPeers+id, (&consulapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return false, err
	}
	floor := s.writtenAt(ctx)
	s.mu.Lock()
	if s.behind(floor) {
		s.floor = max(s.floor, floor)
		delete(s.peers, id)
	}
	s.mu.Unlock()
	s.changed()
	return true, nil
}

// PeerKey implements parktoken.PeerKeys.
func (s *Store) PeerKey(park, kid string) (ed25519.PublicKey, bool) {
	p, ok := s.Get(park)
	if !ok {
		return nil, false
	}
	return p.key(kid), true
}

// RefreshKeys implements parktoken.PeerKeys: it fetches the peer's JWKS
// from its pinned URL (at most once per refreshEvery) and pins the set it
// publishes, so a peer's key rotation is picked up without manual steps.
func (s *Store) RefreshKeys(park string) bool {
	s.mu.Lock()
	if time.Since(s.lastRefresh[park]) < s.refreshEvery {
		s.mu.Unlock()
		return false
	}
	s.lastRefresh[park] = time.Now()
	s.mu.Unlock()
	p, ok := s.Get(park)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	keys, err := fetchJWKS(ctx, s.client, p.URL)
	if err != nil {
		s.logger.Warn("peer JWKS refresh failed", "peer", park, "err", err)
		return false
	}
	// Written over the record as it is now, and only if it still names
	// the URL the keys came from: the peering may have been deleted or
	// made anew while they were fetched.
	changed, err := s.update(ctx, park, func(cur *Peer) (*Peer, bool) {
		if cur.URL != p.URL {
			return nil, false
		}
		np := *cur
		np.Keys = pinKeys(keys)
		np.KeysRefreshedAt = time.Now().UTC()
		return &np, true
	})
	if err != nil {
		s.logger.Warn("storing refreshed peer keys failed", "peer", park, "err", err)
		return false
	}
	if !changed {
		return false
	}
	s.logger.Info("peer keys refreshed", "peer", park, "keys", len(keys))
	return true
}

// LearnIdentity reads peer park's /.well-known/parkmesh.json and keeps its
// display names and country in the peer's record when they changed (or
// were never read). It reports whether the record changed.
func (s *Store) LearnIdentity(ctx context.Context, park string) (bool, error) {
	p, ok := s.Get(park)
	if !ok {
		return false, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(p.URL, "/")+"/.well-known/parkmesh.json", nil)
	if err != nil {
		return false, err
	}
	res, err := s.client.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("parkmesh.json: status %d", res.StatusCode)
	}
	var id Identity
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&id); err != nil {
		return false, fmt.Errorf("parkmesh.json: %w", err)
	}
	if id.Park != park {
		return false, fmt.Errorf("parkmesh.json names park %q", id.Park)
	}
	if id.DisplayName.ZH == "" && id.DisplayName.EN == "" && ValidDisplayName(id.Name) == nil {
		id.DisplayName = DisplayName{ZH: id.Name, EN: id.Name} // a gateway from before display names
	}
	if !id.DisplayName.valid() {
		return false, errors.New("parkmesh.json: unusable display_name")
	}
	if id.Country != "" && !listing.ValidCountry(id.Country) {
		id.Country = ""
	}
	changed, err := s.update(ctx, park, func(cur *Peer) (*Peer, bool) {
		if cur.DisplayName != nil && *cur.DisplayName == id.DisplayName && cur.Country == id.Country {
			return nil, false
		}
		np := *cur
		np.DisplayName, np.Country, np.IdentityAt = &id.DisplayName, id.Country, time.Now().UTC()
		return &np, true
	})
	if err != nil || !changed {
		return false, err
	}
	s.logger.Info("peer identity learned", "peer", park, "name_en", id.DisplayName.EN, "country", id.Country)
	return true, nil
}

// LearnIdentities reads every peer's identity now and then every interval
// until ctx ends, so a park's renamed display names reach its peers'
// records.
func (s *Store) LearnIdentities(ctx context.Context, interval time.Duration) {
	for {
		for _, p := range s.List() {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := s.LearnIdentity(rctx, p.ID); err != nil && ctx.Err() == nil {
				s.logger.Warn("reading a peer's identity failed", "peer", p.ID, "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// fetchJWKS reads a park's published keys from its gateway.
func fetchJWKS(ctx context.Context, client *http.Client, baseURL string) (map[string]ed25519.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+"/.well-known/jwks.json", nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: status %d", res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	return parkkey.ParseJWKS(b)
}

// FeedHealth is how the park's follower of a peer's feed is doing, as
// /api/v1/peers shows it.
type FeedHealth struct {
	Connected   bool      `json:"connected"`
	LastEventAt time.Time `json:"last_event_at,omitzero"`
	LagMS       int64     `json:"lag_ms"`
	Reconnects  int       `json:"reconnects"`
	Malformed   int       `json:"malformed_events"`
	LastError   string    `json:"last_error,omitempty"`
}
