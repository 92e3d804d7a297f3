package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/parkmesh/parkmesh/deploy/consulacl"
	"github.com/parkmesh/parkmesh/deploy/testenv/consultest"
)

func TestParseNamesTheFlag(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "" }
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-token-dir", "d"}, "-management-token-file"},
		{[]string{"-management-token-file", "f"}, "-token-dir"},
		{[]string{"-management-token-file", "f", "-token-dir", "d", "-rotate", "project,nobody"}, "-rotate"},
	} {
		if _, err := parse(tt.args, env); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parse(%v) = %v, want an error naming %s", tt.args, err, tt.want)
		}
	}
	c, err := parse(nil, func(k string) string {
		return map[string]string{"PARKMESH_MANAGEMENT_TOKEN_FILE": "/m", "PARKMESH_TOKEN_DIR": "/t", "PARKMESH_BOOTSTRAP": "true", "CONSUL_HTTP_ADDR": "consul:8500"}[k]
	})
	if err != nil || c.managementFile != "/m" || c.tokenDir != "/t" || !c.bootstrap || c.consul != "consul:8500" {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
}

// TestProvisionsTokens runs the command as the compose job does, against a
// real agent: a token file per process, each with its policy only; a second
// run keeps them; -rotate makes a new one and names the old; no secret is
// printed.
func TestProvisionsTokens(t *testing.T) {
	t.Parallel()
	agent := consultest.Start(t)
	dir := t.TempDir()
	args := []string{"-consul", agent.HTTPAddr(), "-management-token-file", agent.ManagementTokenFile(),
		"-token-dir", dir, "-agent-node", "consultest", "-park", "xian-hitech"}
	env := func(string) string { return "" }
	var out strings.Builder
	if err := run(t.Context(), args, env, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	first := out.String()
	secrets := []string{agent.ManagementToken(t)}
	for _, p := range consulacl.Processes() {
		file := filepath.Join(dir, p, "consul.token")
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v (want mode 0600)", file, err)
		}
		if !regexp.MustCompile(`(?m)^` + p + ` +token \S+ created in ` + regexp.QuoteMeta(file) + `$`).MatchString(first) {
			t.Errorf("output does not report %s's token:\n%s", p, first)
		}
		secret, _ := consulacl.ReadToken(file)
		secrets = append(secrets, secret)
		tok, _, err := agent.ClientWithToken(t, secret).ACL().TokenReadSelf(nil)
		if err != nil || len(tok.Policies) != 1 || tok.Policies[0].Name != consulacl.PolicyName(p) {
			t.Errorf("%s's token: %+v, %v; want policy %s only", p, tok, err, consulacl.PolicyName(p))
		}
	}
	// The project's token registers the project service, nothing else.
	project := agent.ClientWithToken(t, secrets[2])
	if err := project.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "p1", Name: "parkmesh-project", Address: "127.0.0.1", Port: 1}); err != nil {
		t.Errorf("project token registering parkmesh-project: %v", err)
	}

	out.Reset()
	if err := run(t.Context(), args, env, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "created") || strings.Count(out.String(), " kept in ") != len(consulacl.Processes())+1 {
		t.Errorf("second run changed tokens:\n%s", out.String())
	}
	oldAccessor := regexp.MustCompile(`(?m)^project +token (\S+)`).FindStringSubmatch(first)[1]
	out.Reset()
	if err := run(t.Context(), append(args, "-rotate", "project"), env, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "consul acl token delete -accessor-id "+oldAccessor) || strings.Count(out.String(), "created") != 1 {
		t.Errorf("rotation of project:\n%s", out.String())
	}
	for _, s := range secrets {
		if strings.Contains(first+out.String(), s) {
			t.Errorf("a token secret was printed")
		}
	}

	// No management token file: bootstrapping an agent bootstrapped already
	// says what to do.
	err := run(t.Context(), []string{"-consul", agent.HTTPAddr(), "-management-token-file", filepath.Join(t.TempDir(), "m"), "-token-dir", dir, "-bootstrap"}, env, &out)
	if err == nil || !strings.Contains(err.Error(), "bootstrapped already") {
		t.Errorf("bootstrap of a bootstrapped Consul: %v", err)
	}
}
