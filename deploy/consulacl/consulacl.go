// Package consulacl is the one definition of a park's Consul ACL setup: the
// policy of every ParkMesh process (least privilege: a service may only
// register itself; the gateway may register itself, read the park's three
// services and the nodes they run on, and read and write its KV prefix;
// the agent may update its own node) and the code that creates those
// policies and one token per process with the Consul API.
//
// The launcher (make demo, the node tests), the test harness and the
// compose and Kubernetes bootstrap command (deploy/docker/cmd/consulacl)
// all call [Provision], so the policies cannot drift between them.
//
// A token is handed to its process in a file of mode 0600, never on a
// command line: the process reads it with -consul-token-file (or
// CONSUL_HTTP_TOKEN_FILE). docs/deploy.md, "Consul ACLs", has the procedure.
package consulacl

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/registration"
)

// KVPrefix is the part of the park's Consul KV store ParkMesh uses (peers,
// peering tokens): the gateway's token may write there and nowhere else.
const KVPrefix = "parkmesh/"

// Gateway names the gateway process; the services are named after their
// kind ([listing.Kind.Service]: directory, project, talent).
const Gateway = "gateway"

// gatewayService is the name the gateway registers in Consul.
const gatewayService = "parkmesh-gateway"

// TokenFileName is the name of a process's token file inside its own
// directory, where [TokenPath] puts it.
const TokenFileName = "consul.token"

// Processes returns the ParkMesh processes that hold a Consul token: the
// service of each kind, then the gateway.
func Processes() []string {
	var out []string
	for _, k := range listing.Kinds {
		out = append(out, k.Service())
	}
	return append(out, Gateway)
}

// PolicyName is the name of process's ACL policy: "parkmesh-<process>".
func PolicyName(process string) string { return "parkmesh-" + process }

// Rules returns the ACL rules (HCL) of process: a service may register
// itself only; the gateway may register itself, find the park's services
// (their instances and the nodes' health) and read and write [KVPrefix].
func Rules(process string) (string, error) {
	if process == Gateway {
		var b strings.Builder
		fmt.Fprintf(&b, "service %q {\n  policy = \"write\"\n}\n", gatewayService)
		for _, k := range listing.Kinds {
			fmt.Fprintf(&b, "service %q {\n  policy = \"read\"\n}\n", k.ServiceName())
		}
		// Health queries list a service's instances with their nodes'
		// checks, which needs node read.
		b.WriteString("node_prefix \"\" {\n  policy = \"read\"\n}\n")
		fmt.Fprintf(&b, "key_prefix %q {\n  policy = \"write\"\n}\n", KVPrefix)
		return b.String(), nil
	}
	for _, k := range listing.Kinds {
		if k.Service() == process {
			return fmt.Sprintf("service %q {\n  policy = \"write\"\n}\n", k.ServiceName()), nil
		}
	}
	return "", fmt.Errorf("consulacl: no process %q (want one of %v)", process, Processes())
}

// AgentPolicyName is the name of the policy of the agent on node.
func AgentPolicyName(node string) string { return "parkmesh-agent-" + node }

// AgentRules are the rules of the agent's own token: update its node in
// the catalog and read the services it syncs (Consul's documented agent
// token).
func AgentRules(node string) string {
	return fmt.Sprintf("node %q {\n  policy = \"write\"\n}\nservice_prefix \"\" {\n  policy = \"read\"\n}\n", node)
}

// TokenPath puts each process's token in a directory of its own under dir:
// dir/<process>/consul.token. Compose mounts each process's volume there;
// the other callers use it as is.
func TokenPath(dir string) func(process string) string {
	return func(process string) string { return filepath.Join(dir, process, TokenFileName) }
}

// Result says what Provision did for one process.
type Result struct {
	Process string
	// File is where the process's token is.
	File string
	// AccessorID identifies the token (never secret): what `consul acl
	// token read -accessor-id` and the agent's logs name.
	AccessorID string
	// Created is true when a new token was made (none before, the old one
	// was gone or invalid, or a rotation was asked for).
	Created bool
	// Replaced is the accessor id of the token a rotation replaced: delete
	// it once the process runs with the new one.
	Replaced string
}

// Options of [Provision].
type Options struct {
	// Path says where each process's token file goes (see [TokenPath]).
	Path func(process string) string
	// Processes to provision; default [Processes]().
	Processes []string
	// Rotate names processes that get a new token even when their file
	// holds a valid one.
	Rotate []string
	// Park, when set, goes into the tokens' descriptions.
	Park string
}

// Provision creates or updates every process's policy and makes sure each
// process has a valid token holding exactly that policy, written to its
// file (mode 0600, directory 0700). A file holding a valid token of the
// right policy is kept, so Provision can run at every start. mgmt must
// carry a token allowed to manage ACLs (the management token).
func Provision(ctx context.Context, mgmt *api.Client, opts Options) ([]Result, error) {
	if opts.Path == nil {
		return nil, errors.New("consulacl: Options.Path is required")
	}
	procs := opts.Processes
	if len(procs) == 0 {
		procs = Processes()
	}
	var out []Result
	for _, p := range procs {
		rules, err := Rules(p)
		if err != nil {
			return out, err
		}
		desc := "ParkMesh " + p
		if opts.Park != "" {
			desc += " of park " + opts.Park
		}
		res, err := provisionOne(ctx, mgmt, PolicyName(p), rules, desc, opts.Path(p), slices.Contains(opts.Rotate, p))
		if err != nil {
			return out, fmt.Errorf("consulacl: %s: %w", p, err)
		}
		res.Process = p
		out = append(out, res)
	}
	return out, nil
}

// ProvisionAgent gives the agent on node its own token (see [AgentRules]),
// kept in file like a process's, and sets it on the agent the client
// talks to. The agent keeps it across restarts (enable_token_persistence),
// so its node is updated in the catalog from then on.
func ProvisionAgent(ctx context.Context, mgmt *api.Client, node, file string) (Result, error) {
	res, err := provisionOne(ctx, mgmt, AgentPolicyName(node), AgentRules(node), "Consul agent "+node, file, false)
	if err != nil {
		return res, fmt.Errorf("consulacl: agent token: %w", err)
	}
	res.Process = "agent"
	secret, err := ReadToken(file)
	if err != nil {
		return res, err
	}
	if _, err := mgmt.Agent().UpdateAgentACLToken(secret, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return res, fmt.Errorf("consulacl: setting the agent's token: %w", err)
	}
	return res, nil
}

func provisionOne(ctx context.Context, mgmt *api.Client, policy, rules, desc, file string, rotate bool) (Result, error) {
	res := Result{File: file}
	if err := ensurePolicy(ctx, mgmt, policy, rules); err != nil {
		return res, err
	}
	old := ""
	secret, err := ReadToken(file)
	switch {
	case err == nil:
		tok, _, err := mgmt.ACL().TokenReadSelf((&api.QueryOptions{Token: secret}).WithContext(ctx))
		switch {
		case err == nil && holdsOnly(tok, policy) && !rotate:
			res.AccessorID = tok.AccessorID
			return res, nil
		case err == nil && holdsOnly(tok, policy):
			old = tok.AccessorID // rotated: the caller deletes it later
		case err == nil:
			// Some other token (never ours to delete): replaced in the file.
		case !isNotFound(err):
			return res, fmt.Errorf("checking the token in %s: %w", file, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return res, err
	}
	tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{
		Description: desc,
		Policies:    []*api.ACLTokenPolicyLink{{Name: policy}},
	}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return res, fmt.Errorf("creating the token: %w", err)
	}
	if err := WriteToken(file, tok.SecretID); err != nil {
		return res, err
	}
	res.AccessorID, res.Created, res.Replaced = tok.AccessorID, true, old
	return res, nil
}

// holdsOnly reports whether tok carries exactly the one policy.
func holdsOnly(tok *api.ACLToken, policy string) bool {
	return len(tok.Policies) == 1 && tok.Policies[0].Name == policy && len(tok.Roles) == 0 &&
		len(tok.ServiceIdentities) == 0 && len(tok.NodeIdentities) == 0
}

func ensurePolicy(ctx context.Context, mgmt *api.Client, name, rules string) error {
	p, _, err := mgmt.ACL().PolicyReadByName(name, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("reading policy %s: %w", name, err)
	}
	w := (&api.WriteOptions{}).WithContext(ctx)
	if p == nil {
		_, _, err = mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules, Description: "ParkMesh (deploy/consulacl)"}, w)
	} else if p.Rules != rules {
		p.Rules = rules
		_, _, err = mgmt.ACL().PolicyUpdate(p, w)
	}
	if err != nil {
		return fmt.Errorf("writing policy %s: %w", name, err)
	}
	return nil
}

// isNotFound: Consul answers a missing policy with nil and a missing or
// deleted token with 403 "ACL not found".
func isNotFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && (se.Code == http.StatusNotFound ||
		(se.Code == http.StatusForbidden && strings.Contains(se.Body, "ACL not found")))
}

// Bootstrap returns the management token kept in file. When the file does
// not exist it bootstraps the ACL system through the API (possible once per
// datacenter) and writes the token there first. This is the way for a
// Consul whose configuration holds no initial management token (compose);
// an agent started with one (the launcher's) has no need of it.
func Bootstrap(ctx context.Context, client *api.Client, file string) (string, error) {
	if secret, err := ReadToken(file); err == nil {
		return secret, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	tok, _, err := client.ACL().Bootstrap()
	if err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusForbidden {
			return "", fmt.Errorf("consulacl: Consul's ACLs were bootstrapped already, but %s does not hold the management token: "+
				"put it there, or reset the bootstrap (docs/deploy.md, \"Consul ACLs\"): %w", file, err)
		}
		return "", fmt.Errorf("consulacl: ACL bootstrap: %w", err)
	}
	if err := WriteToken(file, tok.SecretID); err != nil {
		return "", err
	}
	return tok.SecretID, nil
}

// NewSecret returns a random token secret in the UUID form Consul expects
// of an initial management token.
func NewSecret() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// ReadToken reads a token file, as the processes do
// ([registration.ReadTokenFile]): its content without surrounding space;
// an empty file is an error, a missing one wraps [os.ErrNotExist].
func ReadToken(file string) (string, error) {
	if file == "" {
		return "", errors.New("consulacl: no token file named")
	}
	return registration.ReadTokenFile(file)
}

// WriteToken writes secret to file with mode 0600 (its directory 0700 when
// it has to be made), through a temporary file renamed into place, so a
// reader never sees half a token.
func WriteToken(file, secret string) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("consulacl: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-token-")
	if err != nil {
		return fmt.Errorf("consulacl: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("consulacl: %w", err)
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("consulacl: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("consulacl: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("consulacl: %w", err)
	}
	return nil
}
