package peering

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
	"github.com/parkmesh/parkmesh/deploy/testenv/logbuf"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
)

// keyRing is a key set a test can rotate under a running store.
type keyRing struct {
	mu sync.Mutex
	ks *parkkey.KeySet
}

func (r *keyRing) get() *parkkey.KeySet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ks
}

func (r *keyRing) set(ks *parkkey.KeySet) {
	r.mu.Lock()
	r.ks = ks
	r.mu.Unlock()
}

// testStore is a running Store with what a test looks at.
type testStore struct {
	*Store
	logs *logbuf.Buffer
	// removals counts changes of the peer set that dropped a peer.
	removals atomic.Int32
	stop     func()
}

// startStore runs a store on the agent at addr with token (the gateway's,
// as in production), watching with waits of wait.
func startStore(t *testing.T, addr, token string, keys func() *parkkey.KeySet, dataDir string, wait time.Duration) *testStore {
	t.Helper()
	cfg := consulapi.DefaultNonPooledConfig()
	cfg.Address, cfg.Token = addr, token
	cc, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStore{logs: &logbuf.Buffer{}}
	ts.Store = NewStore(cc, http.DefaultClient, slog.New(slog.NewJSONHandler(ts.logs, nil)),
		StoreConfig{Keys: keys, Metrics: prometheus.NewRegistry(), DataDir: dataDir})
	ts.watchWait = wait
	var last []string
	var mu sync.Mutex
	ts.OnChange(func() {
		mu.Lock()
		defer mu.Unlock()
		now := map[string]bool{}
		for _, p := range ts.List() {
			now[p.ID] = true
		}
		for _, id := range last {
			if !now[id] {
				ts.removals.Add(1)
			}
		}
		last = last[:0]
		for id := range now {
			last = append(last, id)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ts.Run(ctx) }()
	ts.stop = func() { cancel(); <-done }
	t.Cleanup(func() {
		ts.stop()
		if t.Failed() {
			t.Logf("store log:\n%s", ts.logs)
		}
	})
	select {
	case <-ts.Synced():
	case <-time.After(20 * time.Second):
		t.Fatal("store never read the peer set")
	}
	return ts
}

func (ts *testStore) ids() string {
	var ids []string
	for _, p := range ts.List() {
		ids = append(ids, p.ID)
	}
	return strings.Join(ids, ",")
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func put(t *testing.T, c *consulapi.Client, key string, value []byte) {
	t.Helper()
	if _, err := c.KV().Put(&consulapi.KVPair{Key: key, Value: value}, nil); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// TestStoreIgnoresRecordsNotSignedByThePark: with the gateway's own token
// the store writes and reads its peers; records someone with the
// management token writes unsigned, forged or copied under another key
// change nothing, and are logged and counted once per version.
func TestStoreIgnoresRecordsNotSignedByThePark(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	ks := testKeys(t)
	s := startStore(t, agent.HTTPAddr(), agent.Token(t, consulacl.Gateway), func() *parkkey.KeySet { return ks }, t.TempDir(), time.Second)
	if err := s.Put(t.Context(), testPeer("chengdu-hitech")); err != nil {
		t.Fatalf("Put with the gateway's token: %v", err)
	}

	// Without a token, Consul refuses the write itself.
	var se consulapi.StatusError
	if _, err := agent.ClientWithToken(t, "").KV().Put(&consulapi.KVPair{Key: kvPeers + "rogue", Value: []byte("{}")}, nil); !errors.As(err, &se) || se.Code != http.StatusForbidden {
		t.Fatalf("anonymous write: %v, want 403", err)
	}

	mgmt := agent.Client()
	plain, _ := json.Marshal(testPeer("rogue"))
	put(t, mgmt, kvPeers+"rogue", plain)
	good, _, _ := mgmt.KV().Get(kvPeers+"chengdu-hitech", nil)
	put(t, mgmt, kvPeers+"copied", good.Value) // a valid record, under another key
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	other, _ := parkkey.FromKeys("xian-hitech", otherPriv)
	forged, _ := sealPeer(other, testPeer("forged"))
	var fs sealedRecord
	json.Unmarshal(forged, &fs)
	fs.KID = ks.Current().ID // claims our key
	forged, _ = json.Marshal(fs)
	put(t, mgmt, kvPeers+"forged", forged)

	count := func(reason string) float64 { return value(s.rejectedTotal.WithLabelValues(reason)) }
	eventually(t, "the three records refused", 10*time.Second, func() bool {
		return count(rejectUnsigned) == 1 && count(rejectBadSig) == 2
	})
	if got := s.ids(); got != "chengdu-hitech" {
		t.Errorf("peers = %s, want chengdu-hitech only", got)
	}
	if p, ok := s.Get("rogue"); ok {
		t.Errorf("rogue is a peer: %+v", p)
	}
	if got := value(s.ignored); got != 3 {
		t.Errorf("parkmesh_peer_records_ignored = %v, want 3", got)
	}
	// Several watch rounds later (1 s each), each version is still logged
	// and counted once.
	time.Sleep(2500 * time.Millisecond)
	if n := s.logs.Count(`"key":"parkmesh/peers/rogue"`); n != 1 || count(rejectUnsigned) != 1 {
		t.Errorf("rogue logged %d times, counted %v; want once", n, count(rejectUnsigned))
	}
	// A new version of it is logged and counted again.
	put(t, mgmt, kvPeers+"rogue", append(plain, ' '))
	eventually(t, "the new version refused", 10*time.Second, func() bool { return count(rejectUnsigned) == 2 })
	if got := s.ids(); got != "chengdu-hitech" {
		t.Errorf("peers = %s, want chengdu-hitech only", got)
	}
	if n := s.removals.Load(); n != 0 {
		t.Errorf("%d peers dropped", n)
	}
}

// TestStoreKeepsPeersThroughAgentRestart: while the agent is down and as it
// comes back on its data directory, the store keeps every peer; afterwards
// it follows changes again.
func TestStoreKeepsPeersThroughAgentRestart(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	ks := testKeys(t)
	s := startStore(t, agent.HTTPAddr(), agent.Token(t, consulacl.Gateway), func() *parkkey.KeySet { return ks }, t.TempDir(), 2*time.Second)
	for _, id := range []string{"chengdu-hitech", "siliconvalley-offshore"} {
		if err := s.Put(t.Context(), testPeer(id)); err != nil {
			t.Fatal(err)
		}
	}
	agent.Stop()
	time.Sleep(time.Second)
	if got := s.ids(); got != "chengdu-hitech,siliconvalley-offshore" {
		t.Errorf("with the agent down, peers = %s", got)
	}
	agent.Restart(t)
	time.Sleep(3 * time.Second) // a few watch rounds on the restarted agent
	if got := s.ids(); got != "chengdu-hitech,siliconvalley-offshore" {
		t.Errorf("after the restart, peers = %s", got)
	}
	if n := s.removals.Load(); n != 0 {
		t.Errorf("%d peers dropped across the restart", n)
	}
	// The watch follows again: a deletion made elsewhere arrives.
	if _, err := agent.Client().KV().Delete(kvPeers+"siliconvalley-offshore", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion seen", 10*time.Second, func() bool { return s.ids() == "chengdu-hitech" })
}

// flakyConsul stands between a store and the agent and answers peer-list
// queries the way an agent that is restarting, has lost its leader or is
// still restoring its state might: its mode decides.
type flakyConsul struct {
	mode  atomic.Value // "pass", "down", "leaderless", "amnesiac"
	proxy *httputil.ReverseProxy
	// consistent counts consistent reads passed to the agent.
	consistent atomic.Int32
	// In mode "holdwrite", the plain read of the list a store makes right
	// after a write waits for release before it is passed on.
	// In mode "hold", a blocking query is answered at once by the agent
	// (its state then) but the answer is held back: held gets a value,
	// and the answer goes out when release is closed.
	held    chan struct{}
	release chan struct{}
}

func (f *flakyConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, consistent := r.URL.Query()["consistent"]
	isList := strings.HasPrefix(r.URL.Path, "/v1/kv/"+kvPeers)
	_, blocking := r.URL.Query()["index"]
	switch mode := f.mode.Load().(string); {
	case isList && r.Method == http.MethodGet && !blocking && !consistent && mode == "holdwrite":
		// A store's read of the index right after its own write: held
		// before it reaches the agent.
		f.held <- struct{}{}
		<-f.release
	case isList && blocking && mode == "hold":
		q := r.URL.Query()
		q.Del("index")
		q.Del("wait")
		r.URL.RawQuery = q.Encode()
		rec := httptest.NewRecorder()
		f.proxy.ServeHTTP(rec, r)
		f.held <- struct{}{}
		<-f.release
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	case !isList || mode == "pass":
	case mode == "down":
		http.Error(w, "agent restarting", http.StatusBadGateway)
		return
	case mode == "leaderless" || (mode == "amnesiac" && !consistent):
		// An empty store, index 1: every peer gone, the index backwards.
		w.Header().Set("X-Consul-Index", "1")
		w.Header().Set("X-Consul-KnownLeader", fmt.Sprint(mode == "amnesiac"))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("[]"))
		return
	}
	if consistent {
		f.consistent.Add(1)
	}
	f.proxy.ServeHTTP(w, r)
}

// startFlakyStore runs a store that reaches a new agent through a
// flakyConsul (mode "pass"), watching with waits of wait.
func startFlakyStore(t *testing.T, wait time.Duration) (*testStore, *flakyConsul, *consultest.Agent, *parkkey.KeySet) {
	t.Helper()
	agent := consultest.Start(t)
	target, _ := url.Parse("http://" + agent.HTTPAddr())
	f := &flakyConsul{proxy: httputil.NewSingleHostReverseProxy(target), held: make(chan struct{}, 1)}
	f.mode.Store("pass")
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	ks := testKeys(t)
	s := startStore(t, srv.Listener.Addr().String(), agent.Token(t, consulacl.Gateway), func() *parkkey.KeySet { return ks }, t.TempDir(), wait)
	return s, f, agent, ks
}

// TestStoreBelievesOnlyConfirmedAnswers: an empty peer list right after a
// failure, from an agent without a leader, or with an index that went
// backwards, drops nothing; the store asks again with a consistent read
// and keeps what that says.
func TestStoreBelievesOnlyConfirmedAnswers(t *testing.T) {
	t.Parallel()
	s, f, agent, _ := startFlakyStore(t, 500*time.Millisecond)
	if err := s.Put(t.Context(), testPeer("chengdu-hitech")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the peer", 5*time.Second, func() bool { return s.ids() == "chengdu-hitech" })

	for _, mode := range []string{"down", "leaderless", "amnesiac"} {
		before := f.consistent.Load()
		f.mode.Store(mode)
		time.Sleep(2 * time.Second) // several watch rounds
		if got := s.ids(); got != "chengdu-hitech" {
			t.Errorf("%s: peers = %q, want chengdu-hitech kept", mode, got)
		}
		if mode == "amnesiac" && f.consistent.Load() == before {
			t.Errorf("amnesiac: the store never asked for a consistent read")
		}
		f.mode.Store("pass")
		time.Sleep(time.Second)
	}
	if n := s.removals.Load(); n != 0 {
		t.Errorf("%d peers dropped", n)
	}
	// A deletion the agent confirms is believed.
	if _, err := agent.Client().KV().Delete(kvPeers+"chengdu-hitech", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion seen", 10*time.Second, func() bool { return s.ids() == "" })
}

// TestStoreWriteNotUndoneByAnEarlierAnswer: a watch answer computed before
// this store's own write (a peering established or deleted here) and
// delivered after it must not undo the write, not even for a moment: a
// peer just deleted would be trusted again, one just established dropped.
func TestStoreWriteNotUndoneByAnEarlierAnswer(t *testing.T) {
	t.Parallel()
	s, f, _, _ := startFlakyStore(t, 300*time.Millisecond)
	if err := s.Put(t.Context(), testPeer("chengdu-hitech")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the peer", 5*time.Second, func() bool { return s.ids() == "chengdu-hitech" })

	step := func(what string, write func() error, want string) {
		t.Helper()
		f.release = make(chan struct{})
		f.mode.Store("hold")
		select {
		case <-f.held: // the watch's next answer, from before the write
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the watch asked nothing", what)
		}
		f.mode.Store("pass")
		if err := write(); err != nil {
			t.Fatal(err)
		}
		before := s.removals.Load()
		close(f.release)
		time.Sleep(time.Second) // the held answer, then a few rounds
		if got := s.ids(); got != want || s.removals.Load() != before {
			t.Errorf("%s: peers %q (%d dropped meanwhile), want %q", what, got, s.removals.Load()-before, want)
		}
	}
	step("establish", func() error { return s.Put(t.Context(), testPeer("siliconvalley-offshore")) }, "chengdu-hitech,siliconvalley-offshore")
	var seen atomic.Bool
	s.OnChange(func() { _, ok := s.Get("chengdu-hitech"); seen.Store(seen.Load() || ok) })
	step("delete", func() error { _, err := s.Delete(t.Context(), "chengdu-hitech"); return err }, "siliconvalley-offshore")
	if seen.Load() {
		t.Error("delete: the deleted peer came back for a moment")
	}
}

// TestStoreResignsAfterKeyRotation: after the park's key rotates, the
// records are signed again with the new key, so they still verify once the
// old key is no longer published.
func TestStoreResignsAfterKeyRotation(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	dir := t.TempDir()
	ks, err := parkkey.Init(dir, "xian-hitech")
	if err != nil {
		t.Fatal(err)
	}
	ring := &keyRing{ks: ks}
	s := startStore(t, agent.HTTPAddr(), agent.Token(t, consulacl.Gateway), ring.get, dir, 500*time.Millisecond)
	if err := s.Put(t.Context(), testPeer("chengdu-hitech")); err != nil {
		t.Fatal(err)
	}
	rotated, err := parkkey.Rotate(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ring.set(rotated)
	onlyNew, _ := parkkey.FromKeys("xian-hitech", rotated.Current().Signer().(ed25519.PrivateKey))
	eventually(t, "the record re-signed with the new key", 10*time.Second, func() bool {
		pair, _, err := agent.Client().KV().Get(kvPeers+"chengdu-hitech", nil)
		if err != nil || pair == nil {
			return false
		}
		_, err = OpenPeerRecord(onlyNew, pair.Key, pair.Value)
		return err == nil
	})
	if got := s.ids(); got != "chengdu-hitech" {
		t.Errorf("peers = %s", got)
	}
}

// TestStoreAdoptsUnsignedRecordsOnce: the unsigned records an earlier
// version wrote are signed at the first start of a gateway that signs;
// an unsigned record written after that is refused, by that gateway and
// by one started later with a new data directory.
func TestStoreAdoptsUnsignedRecordsOnce(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	mgmt := agent.Client()
	legacy, _ := json.Marshal(testPeer("chengdu-hitech"))
	put(t, mgmt, kvPeers+"chengdu-hitech", legacy)
	ks := testKeys(t)
	token := agent.Token(t, consulacl.Gateway)
	dir := t.TempDir()
	s := startStore(t, agent.HTTPAddr(), token, func() *parkkey.KeySet { return ks }, dir, 500*time.Millisecond)
	eventually(t, "the earlier version's peer adopted", 10*time.Second, func() bool { return s.ids() == "chengdu-hitech" })
	pair, _, _ := mgmt.KV().Get(kvPeers+"chengdu-hitech", nil)
	if _, err := OpenPeerRecord(ks, pair.Key, pair.Value); err != nil {
		t.Errorf("adopted record not signed in KV: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, adoptedFile)); err != nil {
		t.Errorf("no mark in the data directory: %v", err)
	}

	late, _ := json.Marshal(testPeer("rogue"))
	put(t, mgmt, kvPeers+"rogue", late)
	eventually(t, "the late unsigned record refused", 10*time.Second, func() bool {
		return value(s.rejectedTotal.WithLabelValues(rejectUnsigned)) == 1
	})
	s.stop()
	again := startStore(t, agent.HTTPAddr(), token, func() *parkkey.KeySet { return ks }, t.TempDir(), 500*time.Millisecond)
	eventually(t, "the new gateway's first reads", 10*time.Second, func() bool {
		return value(again.rejectedTotal.WithLabelValues(rejectUnsigned)) == 1
	})
	if got := again.ids(); got != "chengdu-hitech" {
		t.Errorf("a gateway with a new data directory has peers %s, want chengdu-hitech only", got)
	}
}

// TestStoreFetchesNeverUndoADeletion: a key refresh or an identity read
// still fetching from the peer when its peering is deleted does not bring
// the peering back, in Consul or in this replica's memory (it would be
// trusted again).
func TestStoreFetchesNeverUndoADeletion(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	ks, peerKeys := testKeys(t), testKeys(t)
	s := startStore(t, agent.HTTPAddr(), agent.Token(t, consulacl.Gateway), func() *parkkey.KeySet { return ks }, t.TempDir(), 300*time.Millisecond)
	s.refreshEvery = 0

	asked, release := make(chan string, 4), make(chan struct{})
	peerSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- r.URL.Path
		<-release
		switch r.URL.Path {
		case "/.well-known/jwks.json":
			json.NewEncoder(w).Encode(peerKeys.JWKS())
		case "/.well-known/parkmesh.json":
			fmt.Fprint(w, `{"park":"chengdu-hitech","display_name":{"zh":"成都高新区","en":"Chengdu Hi-tech Zone"},"country":"CN"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(peerSrv.Close)

	for _, c := range []struct {
		name  string
		fetch func()
	}{
		{"key refresh", func() { s.RefreshKeys("chengdu-hitech") }},
		{"identity read", func() { s.LearnIdentity(t.Context(), "chengdu-hitech") }},
	} {
		p := testPeer("chengdu-hitech")
		p.URL = peerSrv.URL
		if err := s.Put(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		release = make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); c.fetch() }()
		select {
		case <-asked:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the peer was never asked", c.name)
		}
		if ok, err := s.Delete(t.Context(), "chengdu-hitech"); err != nil || !ok {
			t.Fatalf("%s: delete: %v %v", c.name, ok, err)
		}
		close(release)
		<-done
		time.Sleep(500 * time.Millisecond) // a watch round
		if _, ok := s.Get("chengdu-hitech"); ok {
			t.Errorf("%s: the deleted peer is trusted again", c.name)
		}
		if pair, _, err := agent.Client().KV().Get(kvPeers+"chengdu-hitech", nil); err != nil || pair != nil {
			t.Errorf("%s: the deleted peer's record is back in Consul (%v)", c.name, err)
		}
	}
}

// TestStoreWriteDoesNotUndoANewerAnswer: when the watch has already taken
// an answer newer than a write of this replica (another replica's write
// landed just after it), the write's local effect does not replace that
// answer's record with the older one.
func TestStoreWriteDoesNotUndoANewerAnswer(t *testing.T) {
	t.Parallel()
	// Long waits: a wrong record taken here would stay until the next
	// answer, seconds later.
	s, f, agent, ks := startFlakyStore(t, 10*time.Second)
	peer := func(u string) *Peer { p := testPeer("chengdu-hitech"); p.URL = u; return p }
	if err := s.Put(t.Context(), peer("https://one.example")); err != nil {
		t.Fatal(err)
	}
	url := func() string { p, _ := s.Get("chengdu-hitech"); return p.URL }
	eventually(t, "the peer", 5*time.Second, func() bool { return url() == "https://one.example" })

	f.release = make(chan struct{})
	f.mode.Store("holdwrite")
	done := make(chan error, 1)
	go func() { done <- s.Put(t.Context(), peer("https://two.example")) }()
	select {
	case <-f.held: // written; its read of the index waits
	case <-time.After(5 * time.Second):
		t.Fatal("the write never read the index")
	}
	// Another replica writes after it, and the watch takes that answer.
	key, val, err := SealPeerRecord(ks, peer("https://three.example"))
	if err != nil {
		t.Fatal(err)
	}
	put(t, agent.Client(), key, val)
	eventually(t, "the other replica's write", 5*time.Second, func() bool { return url() == "https://three.example" })
	close(f.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := url(); got != "https://three.example" {
		t.Errorf("after the earlier write returned the store holds %s, want the newer https://three.example", got)
	}
}
