package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/peering"
	"github.com/parkmesh/parkmesh/gateway/search"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// peersOf returns the ids of the peers p's gateway has (GET /api/v1/peers),
// or an error: it may run outside the test's goroutine.
func peersOf(ctx context.Context, p *nodetest.Park, token string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.GatewayURL+"/api/v1/peers", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var body struct{ Peers []struct{ Park string } }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
		return nil, errors.Join(err, errors.New(res.Status))
	}
	var ids []string
	for _, pv := range body.Peers {
		ids = append(ids, pv.Park)
	}
	slices.Sort(ids)
	return ids, nil
}

// metricLine reports whether p's gateway's /metrics has a line starting
// with prefix.
func metricLine(t *testing.T, p *nodetest.Park, prefix string) bool {
	t.Helper()
	_, body := p.Do(context.Background(), "GET", "/metrics", "", nil)
	for line := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// consulClient is an API client for p's agent with the token in file ("":
// no token, the anonymous one).
func consulClient(t *testing.T, p *nodetest.Park, file string) *api.Client {
	t.Helper()
	token := ""
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		token = strings.TrimSpace(string(b))
	}
	return p.Agent.ClientWithToken(t, token)
}

func isForbidden(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusForbidden
}

// TestConsulACLsAndSignedPeerRecords: the park's Consul runs with ACLs on,
// default deny, each process with its own least-privilege token; and a
// peer record that the park's key did not sign (written anonymously,
// with a service's token, or even with the management token; unsigned,
// forged or copied) adds no peer: the peer set stays, the would-be peer
// is never called, and the gateway counts the record.
func TestConsulACLsAndSignedPeerRecords(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	a.Create("projects", project("acl copper", ""))
	b.Create("projects", project("acl copper", ""))
	admin := a.Token(parktoken.Admin)
	want := []string{b.ID}
	if got, err := peersOf(t.Context(), a, admin); err != nil || !slices.Equal(got, want) {
		t.Fatalf("peers of %s = %v, %v; want %v", a.ID, got, err, want)
	}

	// The "peer" an attacker would add: it counts every call it gets.
	var called atomic.Int32
	rogue := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"results":[]}`))
	}))
	t.Cleanup(rogue.Close)
	roguePub, rogueKey, _ := ed25519.GenerateKey(rand.Reader)
	rogueRecord := func(id string) *peering.Peer {
		return &peering.Peer{ID: id, URL: rogue.URL, Keys: map[string]string{parkkey.Thumbprint(roguePub): "x"}, EstablishedAt: time.Now()}
	}
	plain, _ := json.Marshal(rogueRecord("rogue-unsigned"))
	pair := func(key string, v []byte) *api.KVPair { return &api.KVPair{Key: key, Value: v} }

	// Consul refuses the write without a token, and with a service's.
	if _, err := consulClient(t, a, "").KV().Put(pair("parkmesh/peers/rogue-unsigned", plain), nil); !isForbidden(err) {
		t.Errorf("anonymous write to parkmesh/peers/: %v, want 403", err)
	}
	for _, k := range listing.Kinds {
		svc := consulClient(t, a, a.ConsulTokenFile(k.Service()))
		if _, err := svc.KV().Put(pair("parkmesh/peers/rogue-unsigned", plain), nil); !isForbidden(err) {
			t.Errorf("write with the %s service's token: %v, want 403", k.Service(), err)
		}
	}
	// The gateway's token registers the gateway, not another's service.
	gw := consulClient(t, a, a.ConsulTokenFile(consulacl.Gateway))
	err := gw.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "impostor", Name: listing.KindProject.ServiceName(), Address: "127.0.0.1", Port: 1})
	if !isForbidden(err) {
		t.Errorf("gateway's token registering %s: %v, want 403", listing.KindProject.ServiceName(), err)
	}

	// With the management token Consul accepts the writes; the gateway
	// ignores them. Unsigned:
	mgmt := a.Agent.Client().KV()
	if _, err := mgmt.Put(pair("parkmesh/peers/rogue-unsigned", plain), nil); err != nil {
		t.Fatal(err)
	}
	// Signed by the attacker's key, under the park's key id:
	other, _ := parkkey.FromKeys(a.ID, rogueKey)
	_, forged, _ := peering.SealPeerRecord(other, rogueRecord("rogue-forged"))
	forged = []byte(strings.Replace(string(forged), `"kid":"`+other.Current().ID, `"kid":"`+a.Keys.Current().ID, 1))
	if _, err := mgmt.Put(pair("parkmesh/peers/rogue-forged", forged), nil); err != nil {
		t.Fatal(err)
	}
	// The park's own valid record of B, its URL changed (tampered):
	real, _, err := mgmt.Get("parkmesh/peers/"+b.ID, nil)
	if err != nil || real == nil {
		t.Fatalf("B's record: %v", err)
	}
	tampered := strings.Replace(string(real.Value), b.FederationURL, rogue.URL, 1)
	tampered = strings.Replace(tampered, `"id":"`+b.ID, `"id":"rogue-tampered`, 1)
	if _, err := mgmt.Put(pair("parkmesh/peers/rogue-tampered", []byte(tampered)), nil); err != nil {
		t.Fatal(err)
	}

	waitFor(t, "the gateway to count the three records", 10*time.Second, func() bool {
		return metricLine(t, a, `parkmesh_peer_records_rejected_total{reason="unsigned"} 1`) &&
			metricLine(t, a, `parkmesh_peer_records_rejected_total{reason="bad_signature"} 2`) &&
			metricLine(t, a, `parkmesh_peer_records_ignored 3`)
	})
	if got, err := peersOf(t.Context(), a, admin); err != nil || !slices.Equal(got, want) {
		t.Errorf("after the writes, peers of %s = %v, %v; want %v", a.ID, got, err, want)
	}
	// Asking every peer now (mode=live), and from the club index.
	ans, status, _ := clubSearch(t, a, "q=copper&mode=live")
	if status != http.StatusOK || statusOf(ans, b.ID) != search.StatusOK {
		t.Errorf("live club search: %d, %s is %s", status, b.ID, statusOf(ans, b.ID))
	}
	indexed, _, _ := clubSearch(t, a, "q=copper")
	for _, d := range append(ans.Parks.Details, indexed.Parks.Details...) {
		if strings.HasPrefix(d.Park, "rogue") {
			t.Errorf("club search includes %s", d.Park)
		}
	}
	if n := called.Load(); n != 0 {
		t.Errorf("the would-be peer was called %d times", n)
	}
	if n := strings.Count(a.Gateway.Log(), "not signed by this park's key"); n != 3 {
		t.Errorf("%d log lines about refused records, want 3 (one per record version)", n)
	}
}

// TestConsulRestartKeepsPeers: the park's agent stops and starts again on
// the same data directory; throughout, the gateway keeps its peer (it
// never drops it, and club searches still reach it), and afterwards the
// peering is still in Consul, signed.
func TestConsulRestartKeepsPeers(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	b.Create("projects", project("restart copper", ""))
	admin := a.Token(parktoken.Admin)
	reaches := func(when string) {
		t.Helper()
		ans, status, _ := clubSearch(t, a, "q=copper&mode=live") // asks the peer now
		if status != http.StatusOK || statusOf(ans, b.ID) != search.StatusOK || len(ans.Results) == 0 {
			t.Errorf("%s: club search %d, %s is %s, %d results", when, status, b.ID, statusOf(ans, b.ID), len(ans.Results))
		}
	}
	reaches("before the restart")

	// Watch the peer set every 50 ms for the whole restart.
	ctx, cancel := context.WithCancel(t.Context())
	var polls, lost atomic.Int32
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			if got, err := peersOf(ctx, a, admin); err == nil {
				polls.Add(1)
				if !slices.Contains(got, b.ID) {
					lost.Add(1)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	a.Agent.Stop()
	time.Sleep(time.Second)
	reaches("with the agent down")
	a.Agent.Restart(t)
	waitFor(t, "every process registered again", 15*time.Second, allRegistered(t, a, 1))
	time.Sleep(time.Second) // the peer watch's first rounds on the restarted agent
	reaches("after the restart")
	cancel()
	<-watched
	if polls.Load() < 20 || lost.Load() != 0 {
		t.Errorf("%s was missing from %d of %d peer lists during the restart", b.ID, lost.Load(), polls.Load())
	}
	pair, _, err := a.Agent.Client().KV().Get("parkmesh/peers/"+b.ID, nil)
	if err != nil || pair == nil {
		t.Fatalf("after the restart, the peering is not in Consul: %v", err)
	}
	if _, err := peering.OpenPeerRecord(a.Keys, pair.Key, pair.Value); err != nil {
		t.Errorf("the peering record: %v", err)
	}
	if log := a.Gateway.Log(); !strings.Contains(log, "keeping the last known peers") {
		t.Errorf("the gateway's log does not say it kept its peers while Consul was down")
	}
}
