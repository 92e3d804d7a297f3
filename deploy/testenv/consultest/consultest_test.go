package consultest_test

import (
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
)

func TestStartRestartForgetsState(t *testing.T) {
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
	pair, _, err := c.KV().Get("parkmesh/probe", nil)
	if err != nil {
		t.Fatalf("KV get after restart: %v", err)
	}
	if pair != nil {
		t.Fatalf("KV get after restart = %q, want nothing: a -dev agent forgets its state", pair.Value)
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
