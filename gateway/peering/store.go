package peering

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"

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
// mirrored in memory by a watch. While Consul is unreachable the last known
// set stays in force.
type Store struct {
	kv     *consulapi.KV
	client *http.Client
	logger *slog.Logger
	// refreshEvery rate-limits JWKS refreshes per peer.
	refreshEvery time.Duration

	mu          sync.RWMutex
	peers       map[string]*Peer
	index       uint64
	synced      chan struct{}
	syncOnce    sync.Once
	lastRefresh map[string]time.Time
	listeners   []func()
}

// NewStore returns a store on the agent's KV; Run keeps it current.
func NewStore(cc *consulapi.Client, client *http.Client, logger *slog.Logger) *Store {
	return &Store{
		kv: cc.KV(), client: client, logger: logger, refreshEvery: 30 * time.Second,
		peers: map[string]*Peer{}, synced: make(chan struct{}), lastRefresh: map[string]time.Time{},
	}
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
func (s *Store) Run(ctx context.Context) {
	pause := retry.New(100*time.Millisecond, 2*time.Second)
	failing := false
	for ctx.Err() == nil {
		s.mu.RLock()
		idx := s.index
		s.mu.RUnlock()
		opts := (&consulapi.QueryOptions{WaitIndex: idx, WaitTime: 30 * time.Second}).WithContext(ctx)
		pairs, meta, err := s.kv.List(kvPeers, opts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				s.logger.Warn("peer watch failing; keeping the last known peers", "err", err)
				failing = true
			}
			if !retry.Sleep(ctx, pause.NextBackOff()) {
				return
			}
			continue
		}
		if failing {
			s.logger.Info("peer watch recovered")
			failing = false
		}
		pause.Reset()
		next := map[string]*Peer{}
		for _, kv := range pairs {
			var p Peer
			if err := json.Unmarshal(kv.Value, &p); err != nil || p.ID == "" {
				s.logger.Error("ignoring malformed peer record", "key", kv.Key)
				continue
			}
			next[p.ID] = &p
		}
		s.mu.Lock()
		changed := !samePeers(s.peers, next)
		s.peers = next
		if meta.LastIndex < idx {
			s.index = 0 // index went backwards (agent restarted): start over
		} else {
			s.index = meta.LastIndex
		}
		listeners := slices.Clone(s.listeners)
		s.mu.Unlock()
		s.syncOnce.Do(func() { close(s.synced) })
		if changed {
			for _, f := range listeners {
				f()
			}
		}
	}
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

// Put stores p and applies it locally at once (the watch confirms it).
func (s *Store) Put(ctx context.Context, p *Peer) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(&consulapi.KVPair{Key: kvPeers + p.ID, Value: b}, (&consulapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return err
	}
	s.mu.Lock()
	s.peers[p.ID] = p
	s.mu.Unlock()
	s.changed()
	return nil
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
	if _, ok := s.Get(id); !ok {
		return false, nil
	}
	if _, err := s.kv.Delete(kvPeers+id, (&consulapi.WriteOptions{}).WithContext(ctx)); err != nil {
		return false, err
	}
	s.mu.Lock()
	delete(s.peers, id)
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
	np := *p
	np.Keys = pinKeys(keys)
	np.KeysRefreshedAt = time.Now().UTC()
	if err := s.Put(ctx, &np); err != nil {
		s.logger.Warn("storing refreshed peer keys failed", "peer", park, "err", err)
		return false
	}
	s.logger.Info("peer keys refreshed", "peer", park, "keys", len(keys))
	return true
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
