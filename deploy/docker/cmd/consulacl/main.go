// Command consulacl sets up a park's Consul ACLs for ParkMesh where nothing
// else does it for the park: the compose job consul-acl-<park>, and an
// operator on Kubernetes (docs/deploy.md, "Consul ACLs"). It uses the same
// policies as the demo and the tests (deploy/consulacl):
//
//  1. the management token: read from -management-token-file, or, with
//     -bootstrap and no such file, made by Consul's one-time ACL bootstrap
//     and written there (mode 0600);
//  2. one policy per process (directory, project, talent, gateway) and one
//     token each, written to <-token-dir>/<process>/consul.token (0600); a
//     file holding a valid token is kept, so the command can run at every
//     start; -rotate names processes that get a new token anyway;
//  3. with -agent-node, the agent's own token (its node, written beside
//     the management token), set on the agent.
//
// No token is ever printed or passed on a command line: only the tokens'
// accessor ids, which are not secret. Every flag has a PARKMESH_<FLAG>
// environment fallback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/pkg/cliflag"
	"github.com/parkmesh/parkmesh/pkg/registration"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "consulacl:", err)
		os.Exit(1)
	}
}

type config struct {
	consul, managementFile, tokenDir, agentNode, park, rotate string
	bootstrap                                                 bool
	wait                                                      time.Duration
}

func parse(args []string, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("consulacl", flag.ContinueOnError)
	fs.StringVar(&c.consul, "consul", "", "Consul agent HTTP address (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)")
	fs.StringVar(&c.managementFile, "management-token-file", "", "file holding the management token (required)")
	fs.BoolVar(&c.bootstrap, "bootstrap", false, "when the management token file does not exist, bootstrap Consul's ACLs and write the token there")
	fs.StringVar(&c.tokenDir, "token-dir", "", "directory receiving <process>/consul.token for each process (required)")
	fs.StringVar(&c.agentNode, "agent-node", "", "node name of the agent to give its own token (empty: leave the agent's token alone)")
	fs.StringVar(&c.park, "park", "", "park id, for the tokens' descriptions")
	fs.StringVar(&c.rotate, "rotate", "", "comma-separated processes that get a new token even if theirs is valid")
	fs.DurationVar(&c.wait, "wait", time.Minute, "how long to wait for Consul to have a leader")
	if err := cliflag.Parse(fs, args, getenv); err != nil {
		return c, err
	}
	if c.consul == "" {
		c.consul = getenv(registration.AgentAddrEnv)
	}
	c.consul = registration.AgentAddr(c.consul)
	if c.managementFile == "" {
		return c, errors.New("-management-token-file: required")
	}
	if c.tokenDir == "" {
		return c, errors.New("-token-dir: required")
	}
	for _, p := range rotation(c.rotate) {
		if _, err := consulacl.Rules(p); err != nil {
			return c, fmt.Errorf("-rotate: %w", err)
		}
	}
	return c, nil
}

func rotation(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	c, err := parse(args, getenv)
	if err != nil {
		return err
	}
	client := func(token string) (*api.Client, error) {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Token, cfg.TokenFile = c.consul, token, ""
		return api.NewClient(cfg)
	}
	anon, err := client("")
	if err != nil {
		return fmt.Errorf("-consul %q: %w", c.consul, err)
	}
	if err := waitLeader(ctx, anon, c.wait); err != nil {
		return fmt.Errorf("-consul %s: %w", c.consul, err)
	}
	var mgmtToken string
	if c.bootstrap {
		mgmtToken, err = consulacl.Bootstrap(ctx, anon, c.managementFile)
	} else {
		mgmtToken, err = consulacl.ReadToken(c.managementFile)
	}
	if err != nil {
		return fmt.Errorf("-management-token-file: %w", err)
	}
	mgmt, err := client(mgmtToken)
	if err != nil {
		return err
	}
	results, err := consulacl.Provision(ctx, mgmt, consulacl.Options{
		Path: consulacl.TokenPath(c.tokenDir), Rotate: rotation(c.rotate), Park: c.park,
	})
	if err != nil {
		return err
	}
	if c.agentNode != "" {
		res, err := consulacl.ProvisionAgent(ctx, mgmt, c.agentNode, filepath.Join(filepath.Dir(c.managementFile), "agent.token"))
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	for _, r := range results {
		what := "kept"
		if r.Created {
			what = "created"
		}
		fmt.Fprintf(out, "%-9s token %s %s in %s\n", r.Process, r.AccessorID, what, r.File)
		if r.Replaced != "" {
			fmt.Fprintf(out, "%-9s once it runs with the new token, delete the old one: consul acl token delete -accessor-id %s\n", r.Process, r.Replaced)
		}
	}
	return nil
}

// waitLeader waits until the agent answers and its cluster has a leader
// (the status endpoint needs no token).
func waitLeader(ctx context.Context, c *api.Client, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		leader, err := c.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx))
		if err == nil && leader != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leader after %s (last error: %v)", limit, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
