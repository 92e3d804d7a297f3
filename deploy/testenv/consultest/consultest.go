// Package consultest starts a real Consul agent for a test, the way
// Consul's own api tests do: one single-node server per call, on free
// loopback ports, with its state in the test's temporary directory and ACLs
// on (default deny), ready (leader elected, ACLs set up, node healthy)
// before the test goes on, and stopped when the test ends. Its Client
// carries the management token; [Agent.TokenFile] hands out the token a
// ParkMesh process gets in production (deploy/consulacl).
//
// There is deliberately no fake: anything about registration or discovery is
// tested against the agent ParkMesh runs in production. The binary comes
// from PARKMESH_CONSUL_BIN or deploy/tools/install-consul.sh (see
// [consulagent.FindBinary]); when neither yields one, the test fails rather
// than skips, so CI cannot pass without having run these tests. With
// -short, tests that start an agent are skipped.
package consultest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/consulagent"
	"github.com/parkmesh/parkmesh/deploy/testenv/internal/harness"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
)

// tool names the agent in the test's log.
const tool = "Consul agent"

// Agent is a Consul agent owned by one test: a [consulagent.Agent]
// (HTTPAddr, Client, Running, LogPath, LogTail, …) whose Stop, Kill and
// Restart report to the test instead of returning errors. It keeps its
// ports and its state for its whole life, so a stopped agent starts again
// where clients expect it, with everything it held.
type Agent struct {
	*consulagent.Agent

	tokensOnce sync.Once
	tokensErr  error
}

// Start starts a fresh Consul agent on free loopback ports and returns
// once it is ready. A port taken between choosing and binding makes it
// choose again (see [consulagent.LaunchOnFreePorts]), never fails the test.
// The agent is stopped when the test and its subtests finish; if the test
// failed, the last lines of its log are logged. Start calls tb.Fatal when
// the binary cannot be found or built or the agent does not come up.
func Start(tb testing.TB) *Agent {
	tb.Helper()
	opts := options(tb)
	return &Agent{Agent: harness.Start(tb, tool, func(ctx context.Context) (*consulagent.Agent, error) {
		return consulagent.LaunchOnFreePorts(ctx, opts, nil, tb.Logf)
	})}
}

// NewStopped reserves ports and a log file for an agent but does not start
// it: clients pointed at [Agent.HTTPAddr] find nobody there until
// [Agent.Restart]. Use it to test code that must cope with an agent that is
// not up yet. Its ports are fixed from here on, since clients already hold
// them: if another process takes one meanwhile, Restart fails the test. Like
// Start, it fails the test when there is no binary.
func NewStopped(tb testing.TB) *Agent {
	tb.Helper()
	opts := options(tb)
	ports, err := localproc.FreePorts(4)
	if err != nil {
		tb.Fatalf("consultest: %v", err)
	}
	opts.HTTPPort, opts.ServerPort, opts.SerfLANPort, opts.SerfWANPort = ports[0], ports[1], ports[2], ports[3]
	a, err := consulagent.New(opts)
	if err != nil {
		tb.Fatalf("consultest: %v", err)
	}
	return Adopt(tb, a)
}

// Adopt makes an agent started elsewhere (e.g. by the park launcher) the
// test's: it is stopped when the test ends, and its log's end is logged if
// the test failed.
func Adopt(tb testing.TB, a *consulagent.Agent) *Agent {
	harness.Own(tb, tool, a)
	return &Agent{Agent: a}
}

// Binary returns the Consul binary for a test that runs an agent. With
// -short it skips the test; without a binary it fails it.
func Binary(tb testing.TB) string {
	tb.Helper()
	return harness.Binary(tb, tool, "set "+consulagent.BinEnv+" to a consul 1.21 binary or fix deploy/tools/install-consul.sh",
		consulagent.FindBinary)
}

// options are a test agent's: its binary, and its state and log file in
// the test's directory; ports are the caller's to fill in.
func options(tb testing.TB) consulagent.Options {
	tb.Helper()
	dir := tb.TempDir()
	return consulagent.Options{
		Bin:        Binary(tb),
		NodeName:   "consultest",
		Dir:        filepath.Join(dir, "consul"),
		RunOptions: localproc.RunOptions{LogPath: filepath.Join(dir, "consul.log"), KillWithParent: true},
	}
}

// TokenFile returns the file holding the token of ParkMesh process
// (directory, project, talent or gateway; see [consulacl.Processes]), with
// the policy it has in production. The tokens are made at the first call.
// The agent must be running.
func (a *Agent) TokenFile(tb testing.TB, process string) string {
	tb.Helper()
	dir := filepath.Join(a.Options().Dir, "tokens")
	a.tokensOnce.Do(func() {
		_, a.tokensErr = consulacl.Provision(tb.Context(), a.Client(), consulacl.Options{Path: consulacl.TokenPath(dir)})
	})
	if a.tokensErr != nil {
		tb.Fatalf("consultest: tokens: %v", a.tokensErr)
	}
	return consulacl.TokenPath(dir)(process)
}

// Token returns the secret of process's token (see [Agent.TokenFile]).
func (a *Agent) Token(tb testing.TB, process string) string {
	tb.Helper()
	secret, err := consulacl.ReadToken(a.TokenFile(tb, process))
	if err != nil {
		tb.Fatal(err)
	}
	return secret
}

// ServiceToken returns a new token that may register the service name and
// nothing else: the policy a ParkMesh service has, for a service of the
// test's naming.
func (a *Agent) ServiceToken(tb testing.TB, name string) string {
	tb.Helper()
	acl := a.Client().ACL()
	policy, _, err := acl.PolicyCreate(&api.ACLPolicy{
		Name:  "test-service-" + name + "-" + consulacl.NewSecret()[:8],
		Rules: fmt.Sprintf("service %q {\n  policy = \"write\"\n}\n", name),
	}, nil)
	if err != nil {
		tb.Fatalf("consultest: policy for %s: %v", name, err)
	}
	tok, _, err := acl.TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		tb.Fatalf("consultest: token for %s: %v", name, err)
	}
	return tok.SecretID
}

// ManagementToken returns the agent's management token.
func (a *Agent) ManagementToken(tb testing.TB) string {
	tb.Helper()
	secret, err := consulacl.ReadToken(a.ManagementTokenFile())
	if err != nil {
		tb.Fatal(err)
	}
	return secret
}

// ClientWithToken returns an API client for the agent sending token (none:
// the anonymous token).
func (a *Agent) ClientWithToken(tb testing.TB, token string) *api.Client {
	tb.Helper()
	cfg := api.DefaultNonPooledConfig()
	cfg.Address, cfg.Scheme, cfg.Token, cfg.TokenFile = a.HTTPAddr(), "http", token, ""
	c, err := api.NewClient(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Stop ends the agent (gracefully, then by force after a few seconds) and
// waits until it is gone. It is idempotent. The agent keeps its state on
// disk: after Restart, its catalog, KV and ACLs are as they were.
func (a *Agent) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.Agent.Stop(ctx) // it only fails when even SIGKILL does; nothing to do then
}

// Kill ends the agent at once (SIGKILL), as a crash would, and waits until
// it is gone. It is idempotent; [Agent.Restart] brings it back.
func (a *Agent) Kill() {
	_ = a.Agent.Kill() // it only fails when the process cannot be signalled at all
}

// Restart stops the agent if it runs and starts it again on the same ports,
// returning once it is ready; it also starts an agent made by
// [NewStopped]. The agent comes back with the state it had: its catalog,
// KV and tokens. It calls tb.Fatal when the agent does not come up.
func (a *Agent) Restart(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 2*time.Minute)
	defer cancel()
	if err := a.Agent.Restart(ctx); err != nil {
		tb.Fatalf("consultest: restart on %s: %v", a.HTTPAddr(), err)
	}
}
