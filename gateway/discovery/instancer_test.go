package discovery

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
)

// TestInstancerFollowsSoonAfterConsulFails: after its agent failed every
// query for 15 s, the instancer learns of an instance registered
// meanwhile within its short retry (go-kit's waited up to a minute), and
// stops at once even while a query blocks.
func TestInstancerFollowsSoonAfterConsulFails(t *testing.T) {
	agent := consultest.Start(t)
	target, _ := url.Parse("http://" + agent.HTTPAddr())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "agent restarting", http.StatusBadGateway)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := consulapi.DefaultNonPooledConfig()
	cfg.Address, cfg.Token = srv.Listener.Addr().String(), agent.Token(t, consulacl.Gateway)
	cc, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	register := func(id string, port int) {
		t.Helper()
		if err := agent.Client().Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
			ID: id, Name: "parkmesh-directory", Address: "127.0.0.1", Port: port,
		}); err != nil {
			t.Fatal(err)
		}
	}
	register("d1", 1111)

	in := newInstancer(cc, "parkmesh-directory", slog.New(slog.NewTextHandler(io.Discard, nil)))
	events := make(chan sd.Event, 64)
	in.Register(events)
	latest := func(want []string, within time.Duration) bool {
		deadline := time.After(within)
		for {
			select {
			case ev := <-events:
				if ev.Err == nil && slices.Equal(ev.Instances, want) {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	if !latest([]string{"127.0.0.1:1111"}, 10*time.Second) {
		t.Fatal("the first instance was never seen")
	}

	// Every query fails for 15 s (go-kit's wait had grown to 5–20 s by
	// then); an instance is registered meanwhile.
	down.Store(true)
	time.Sleep(5 * time.Second)
	register("d2", 2222)
	time.Sleep(10 * time.Second)
	down.Store(false)
	back := time.Now()
	if !latest([]string{"127.0.0.1:1111", "127.0.0.1:2222"}, 6*time.Second) {
		t.Fatalf("the instance registered while the agent failed was not seen within 6 s of its return")
	}
	t.Logf("seen %s after the agent answered again", time.Since(back).Round(time.Millisecond))

	// Stop ends the blocking query now, not when it would time out.
	start := time.Now()
	in.Stop()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Stop took %s", took)
	}
}
