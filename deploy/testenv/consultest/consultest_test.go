package consultest_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
	"github.com/parkmesh/parkmesh/pkg/listing"
)

func TestRestartKeepsState(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	c := a.Client()

	leader, err := c.Status().Leader()
	if err != nil || leader == "" {
		t.Fatalf("Leader() = %q, %v; want a leader", leader, err)
	}
	if _, err := c.KV().Put(&api.KVPair{Key: "parkmesh/probe", Value: []byte("1")}, nil); err != nil {
		t.Fatalf("KV put: %v", err)
	}
	gateway := a.Token(t, consulacl.Gateway)

	addr := a.HTTPAddr()
	a.Stop()
	if a.Running() {
		t.Fatal("Running() = true after Stop")
	}
	if _, err := c.Status().Leader(); err == nil {
		t.Fatal("Leader() succeeded on a stopped agent")
	}
	a.Stop() // idempotent

	a.Restart(t)
	if got := a.HTTPAddr(); got != addr {
		t.Fatalf("HTTPAddr after restart = %s, want %s", got, addr)
	}
	// The KV and the tokens are on disk: both survive the restart.
	pair, _, err := a.ClientWithToken(t, gateway).KV().Get("parkmesh/probe", nil)
	if err != nil || pair == nil || string(pair.Value) != "1" {
		t.Fatalf("KV get after restart with the gateway's token = %v, %v; want the value put before", pair, err)
	}
}

// TestLeastPrivilege: with ACLs on and default deny, nobody writes the KV
// without a token, a service's token cannot write the KV, and the
// gateway's token cannot register a service named like another's.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	forbidden := func(what string, err error) {
		t.Helper()
		var se api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusForbidden {
			t.Errorf("%s: err = %v, want 403", what, err)
		}
	}
	rogue := &api.KVPair{Key: "parkmesh/peers/rogue", Value: []byte(`{"id":"rogue","url":"http://127.0.0.1:1"}`)}
	_, err := a.ClientWithToken(t, "").KV().Put(rogue, nil)
	forbidden("anonymous KV write", err)
	for _, k := range listing.Kinds {
		svc := a.ClientWithToken(t, a.Token(t, k.Service()))
		_, err := svc.KV().Put(rogue, nil)
		forbidden(k.Service()+" token KV write", err)
		err = svc.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "x-" + k.Service(), Name: "parkmesh-gateway", Address: "127.0.0.1", Port: 1})
		forbidden(k.Service()+" token registering parkmesh-gateway", err)
		if err := svc.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "ok-" + k.Service(), Name: k.ServiceName(), Address: "127.0.0.1", Port: 1}); err != nil {
			t.Errorf("%s token registering itself: %v", k.Service(), err)
		}
	}
	gw := a.ClientWithToken(t, a.Token(t, consulacl.Gateway))
	for _, k := range listing.Kinds {
		err := gw.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "gw-as-" + k.Service(), Name: k.ServiceName(), Address: "127.0.0.1", Port: 1})
		forbidden("gateway token registering "+k.ServiceName(), err)
	}
	if err := gw.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "gw", Name: "parkmesh-gateway", Address: "127.0.0.1", Port: 1}); err != nil {
		t.Errorf("gateway token registering itself: %v", err)
	}
	if _, err := gw.KV().Put(&api.KVPair{Key: "parkmesh/probe", Value: []byte("1")}, nil); err != nil {
		t.Errorf("gateway token writing its KV prefix: %v", err)
	}
	_, err = gw.KV().Put(&api.KVPair{Key: "elsewhere", Value: []byte("1")}, nil)
	forbidden("gateway token KV write outside parkmesh/", err)
	_, _, err = gw.ACL().TokenList(nil)
	forbidden("gateway token listing ACL tokens", err)
	// The gateway finds the services (health-filtered, as discovery asks).
	if entries, _, err := gw.Health().Service(listing.KindProject.ServiceName(), "", false, nil); err != nil || len(entries) != 1 {
		t.Errorf("gateway token reading %s's instances: %d, %v; want 1", listing.KindProject.ServiceName(), len(entries), err)
	}
}

func TestNewStoppedStartsOnRestart(t *testing.T) {
	t.Parallel()
	a := consultest.NewStopped(t)
	if a.Running() {
		t.Fatal("Running() = true for NewStopped")
	}
	if _, err := a.Client().Status().Leader(); err == nil {
		t.Fatal("Leader() succeeded before the agent was started")
	}
	a.Restart(t)
	if leader, err := a.Client().Status().Leader(); err != nil || leader == "" {
		t.Fatalf("Leader() = %q, %v; want a leader", leader, err)
	}
}

func TestAgentsSideBySide(t *testing.T) {
	t.Parallel()
	a, b := consultest.Start(t), consultest.Start(t)
	if a.HTTPAddr() == b.HTTPAddr() {
		t.Fatalf("two agents share %s", a.HTTPAddr())
	}
	for _, ag := range []*consultest.Agent{a, b} {
		if _, err := ag.Client().Agent().Self(); err != nil {
			t.Fatalf("agent %s: %v", ag.HTTPAddr(), err)
		}
	}
}
