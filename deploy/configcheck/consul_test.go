package configcheck

import (
	"maps"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// Consul runs with ACLs, default deny, everywhere (docs/deploy.md, "Consul
// ACLs"): each ParkMesh process gets a token of its own, in a file of its
// own that no other process can read, named by PARKMESH_CONSUL_TOKEN_FILE;
// no token is ever a variable's value or an argument.

// tokenProcesses are the processes that hold a Consul token (as
// deploy/consulacl's Processes).
var tokenProcesses = []string{"directory", "project", "talent", "gateway"}

// tokenEnv names the variables that would carry a Consul token itself.
var tokenEnv = regexp.MustCompile(`^(CONSUL_HTTP_TOKEN|PARKMESH_CONSUL_TOKEN)$`)

// aclConfig is the Consul configuration the compose servers load.
const aclConfig = "deploy/consul/acl.hcl"

func TestConsulACLConfig(t *testing.T) {
	hcl := readFile(t, aclConfig)
	for _, want := range []string{`enabled                  = true`, `default_policy           = "deny"`, `enable_token_persistence = true`} {
		if !strings.Contains(hcl, want) {
			t.Errorf("%s lacks %q", aclConfig, want)
		}
	}
	if regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-`).MatchString(hcl) || strings.Contains(hcl, "initial_management") {
		t.Errorf("%s holds a token: it goes into an image", aclConfig)
	}
	df := readDockerfile(t, dockerfilePath)
	if !slices.Contains(df.instrs("consul"), "COPY "+aclConfig+" /consul/config/acl.hcl") {
		t.Errorf("%s target consul does not COPY %s to /consul/config/acl.hcl", dockerfilePath, aclConfig)
	}
	if !slices.Contains(df.instrs("admin"), "COPY --from=build /out/bin/parkmesh /out/bin/loadsample /out/bin/consulacl /usr/local/bin/") {
		t.Errorf("%s target admin does not hold consulacl", dockerfilePath)
	}
}

// TestComposeConsulACLs: each park's Consul loads the ACL configuration;
// its consul-acl job bootstraps it and writes each process's token into
// that process's own volume, which the process reads it from; processes
// start after the job; nothing sets a token in the environment.
func TestComposeConsulACLs(t *testing.T) {
	p := loadCompose(t)
	byName := p.Services
	for _, s := range p.Services {
		for k := range s.Environment {
			if tokenEnv.MatchString(k) {
				t.Errorf("%s sets %s: a token goes in a file, named by PARKMESH_CONSUL_TOKEN_FILE", s.Name, k)
			}
		}
		for _, arg := range s.Command {
			if strings.Contains(strings.ToLower(arg), "token=") || arg == "-token" {
				t.Errorf("%s passes a token on its command line: %v", s.Name, s.Command)
			}
		}
	}
	parks := map[string]bool{}
	for _, s := range p.Services {
		if park := s.Labels["org.parkmesh.park"]; park != "" {
			parks[park] = true
		}
	}
	for _, park := range slices.Sorted(maps.Keys(parks)) {
		t.Run(park, func(t *testing.T) {
			consul, ok := byName["consul-"+park]
			if !ok {
				t.Fatalf("no consul-%s", park)
			}
			if !slices.Contains(consul.Command, "-config-dir=/consul/config") {
				t.Errorf("%s does not load /consul/config (the ACL configuration): %v", consul.Name, consul.Command)
			}
			// With default deny, a health check must not need a token.
			if hc := consul.HealthCheck; hc == nil || !slices.Contains(hc.Test, "http://127.0.0.1:8500/v1/status/leader") {
				t.Errorf("%s: health check %v; want probe on /v1/status/leader, which needs no token", consul.Name, hc)
			}
			job, ok := byName["consul-acl-"+park]
			if !ok || len(job.Command) == 0 || job.Command[0] != "consulacl" {
				t.Fatalf("no job consul-acl-%s running consulacl", park)
			}
			if env(job, "PARKMESH_CONSUL") != consul.Name+":8500" || env(job, "PARKMESH_BOOTSTRAP") != "true" {
				t.Errorf("%s: PARKMESH_CONSUL %q, PARKMESH_BOOTSTRAP %q; want its park's Consul, bootstrapped", job.Name, env(job, "PARKMESH_CONSUL"), env(job, "PARKMESH_BOOTSTRAP"))
			}
			if job.DependsOn[consul.Name].Condition != types.ServiceConditionHealthy {
				t.Errorf("%s does not wait for %s", job.Name, consul.Name)
			}
			jobMounts := mounts(job)
			mgmt := env(job, "PARKMESH_MANAGEMENT_TOKEN_FILE")
			mgmtVol := jobMounts[path.Dir(mgmt)].Source
			if mgmtVol == "" {
				t.Errorf("%s: the management token %s is not on a volume of its own", job.Name, mgmt)
			}
			tokenDir := env(job, "PARKMESH_TOKEN_DIR")
			for _, proc := range tokenProcesses {
				s := byName[proc+"-"+park]
				data := mounts(s)["/var/lib/parkmesh"]
				if data.Source == "" {
					t.Errorf("%s has no data volume", s.Name)
					continue
				}
				if got := jobMounts[path.Join(tokenDir, proc)].Source; got != data.Source {
					t.Errorf("%s mounts %q at %s, want %s's own volume %s", job.Name, got, path.Join(tokenDir, proc), s.Name, data.Source)
				}
				if got, want := env(s, "PARKMESH_CONSUL_TOKEN_FILE"), "/var/lib/parkmesh/consul.token"; got != want {
					t.Errorf("%s: PARKMESH_CONSUL_TOKEN_FILE = %q, want %q (its volume, where the job wrote its token)", s.Name, got, want)
				}
				if s.DependsOn[job.Name].Condition != types.ServiceConditionCompletedSuccessfully {
					t.Errorf("%s does not wait for %s", s.Name, job.Name)
				}
				for _, v := range s.Volumes {
					if v.Source == mgmtVol {
						t.Errorf("%s mounts the management token's volume", s.Name)
					}
				}
			}
			for _, s := range p.Services {
				for _, v := range s.Volumes {
					if v.Source == mgmtVol && s.Name != job.Name {
						t.Errorf("%s mounts %s, the management token's volume", s.Name, mgmtVol)
					}
				}
			}
		})
	}
}

// TestK8sConsulTokens: every process mounts its own key of the Secret
// parkmesh-consul-tokens, read-only, and names the file; the script that
// makes the Secret makes exactly those keys; the chart's values turn ACLs
// on.
func TestK8sConsulTokens(t *testing.T) {
	const secret = "parkmesh-consul-tokens"
	for _, park := range overlays(t) {
		dir := "k8s/overlays/" + park
		m := decodeStrict(t, dir, render(t, dir))
		for _, w := range m.workloads() {
			c := w.template.Spec.Containers[0]
			for _, e := range c.Env {
				if tokenEnv.MatchString(e.Name) {
					t.Errorf("%s %s sets %s: a token goes in a file", dir, w.name, e.Name)
				}
			}
			if !slices.Contains(tokenProcesses, w.name) {
				continue
			}
			where := dir + " " + w.name
			var file string
			for _, e := range c.Env {
				if e.Name == "PARKMESH_CONSUL_TOKEN_FILE" {
					file = e.Value
				}
			}
			if file == "" {
				t.Errorf("%s: no PARKMESH_CONSUL_TOKEN_FILE", where)
				continue
			}
			var found bool
			for _, v := range w.template.Spec.Volumes {
				if v.Secret == nil || v.Secret.SecretName != secret {
					continue
				}
				found = true
				if len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != w.name {
					t.Errorf("%s: mounts the items %+v of %s, want its own key %s only", where, v.Secret.Items, secret, w.name)
					continue
				}
				var mounted bool
				for _, vm := range c.VolumeMounts {
					if vm.Name == v.Name && path.Join(vm.MountPath, v.Secret.Items[0].Path) == file {
						mounted = vm.ReadOnly
					}
				}
				if !mounted {
					t.Errorf("%s: %s is not %s's %s mounted read-only", where, file, secret, w.name)
				}
			}
			if !found {
				t.Errorf("%s: does not mount the Secret %s", where, secret)
			}
		}
	}

	const script = "k8s/consul/consul-tokens.sh"
	if out, err := exec.Command("sh", "-n", repoPath(t, script)).CombinedOutput(); err != nil {
		t.Errorf("sh -n %s: %v\n%s", script, err, out)
	}
	src := readFile(t, script)
	if !strings.Contains(src, "create secret generic "+secret) {
		t.Errorf("%s does not make the Secret %s", script, secret)
	}
	keys := regexp.MustCompile(`--from-file=([a-z]+)=`).FindAllStringSubmatch(src, -1)
	var got []string
	for _, k := range keys {
		got = append(got, k[1])
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tokenProcesses))) {
		t.Errorf("%s stores the keys %v, want %v", script, got, tokenProcesses)
	}
	if !strings.Contains(readFile(t, "Tiltfile"), "'sh "+script+" '") {
		t.Errorf("the Tiltfile does not run %s (its pods would wait for the Secret)", script)
	}

	var v struct {
		Global struct {
			ACLs struct {
				ManageSystemACLs bool `json:"manageSystemACLs"`
			} `json:"acls"`
		}
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "k8s/consul/values.yaml")), &v); err != nil {
		t.Fatal(err)
	}
	if !v.Global.ACLs.ManageSystemACLs {
		t.Error("k8s/consul/values.yaml: global.acls.manageSystemACLs is not true: Consul would run without ACLs")
	}
}
