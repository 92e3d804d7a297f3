package deploy_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/pkg/cliflag"
)

// flagsOf returns the flags a binary of the Dockerfile build prints for
// -h, as their PARKMESH_<FLAG> environment names.
func flagsOf(t *testing.T, binary string) map[string]string {
	t.Helper()
	dir, _ := dockerfileBinaries(t)
	out, _ := exec.Command(filepath.Join(dir, binary), "-h").CombinedOutput()
	flags := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[cliflag.EnvName(m[1])] = m[1]
	}
	if len(flags) == 0 {
		t.Fatalf("%s -h listed no flags:\n%s", binary, out)
	}
	return flags
}

var processes = []string{"directory", "project", "talent", "gateway"}

// TestEnvironmentNamesFlags: a PARKMESH_ variable that names no flag is
// silently ignored by the process, so every one the deployment files set
// must be a flag of the binary it is given to.
func TestEnvironmentNamesFlags(t *testing.T) {
	flags := map[string]map[string]string{}
	for _, b := range append(processes, "loadsample") {
		flags[b] = flagsOf(t, b)
	}
	check := func(where, binary, name string) {
		if strings.HasPrefix(name, "PARKMESH_") && flags[binary][name] == "" {
			t.Errorf("%s sets %s, which is no flag of %s", where, name, binary)
		}
	}

	p := loadCompose(t)
	for _, s := range p.Services {
		if s.Build == nil {
			continue
		}
		if _, ok := flags[s.Build.Target]; ok {
			for k := range s.Environment {
				check("docker-compose.yml service "+s.Name, s.Build.Target, k)
			}
			continue
		}
		// The jobs: a script reads its variables, or loadsample its flags.
		if len(s.Command) == 0 {
			continue
		}
		script := "deploy/docker/scripts/" + s.Command[0]
		for k := range s.Environment {
			switch {
			case s.Command[0] == "loadsample":
				check("docker-compose.yml service "+s.Name, "loadsample", k)
			case !fileExists(repoPath(t, script)):
				t.Errorf("docker-compose.yml service %s runs %s, which is neither a script nor loadsample", s.Name, s.Command[0])
			case !strings.Contains(readFile(t, script), k) && !adminCLIEnv[k]:
				t.Errorf("docker-compose.yml service %s sets %s, which %s and the admin CLI do not read", s.Name, k, script)
			}
		}
	}

	for _, park := range overlays(t) {
		m := decodeStrict(t, park, render(t, "k8s/overlays/"+park))
		for _, w := range m.workloads() {
			if _, ok := flags[w.name]; !ok {
				continue
			}
			for _, c := range w.template.Spec.Containers {
				for _, e := range c.Env {
					check("overlay "+park+" "+w.name, w.name, e.Name)
				}
			}
		}
		for _, cm := range m.configMaps {
			for k := range cm.Data {
				used := false
				for _, b := range processes {
					used = used || flags[b][k] != ""
				}
				if strings.HasPrefix(k, "PARKMESH_") && !used {
					t.Errorf("overlay %s ConfigMap sets %s, a flag of no process", park, k)
				}
			}
		}
	}

	df := parseDockerfile(t, "deploy/docker/Dockerfile")
	for _, b := range processes {
		for k := range df.stage(b).vars(df.globalArgs) {
			check("Dockerfile target "+b, b, k)
		}
	}
}

// adminCLIEnv are the variables the parkmesh CLI reads (gateway/admin).
var adminCLIEnv = map[string]bool{"PARKMESH_DATA_DIR": true, "PARKMESH_PARK": true, "PARKMESH_GATEWAY": true, "PARKMESH_ADMIN_TOKEN": true}

// TestDocsListEveryFlag keeps docs/deploy.md in step with the processes.
func TestDocsListEveryFlag(t *testing.T) {
	doc := readFile(t, "docs/deploy.md")
	for _, b := range processes {
		for _, flag := range flagsOf(t, b) {
			if !strings.Contains(doc, "`-"+flag+"`") {
				t.Errorf("docs/deploy.md does not describe %s's flag -%s", b, flag)
			}
		}
	}
	for _, ref := range []string{"deploy/docker/docker-compose.yml", "k8s/consul/values.yaml", "deploy/docker/Dockerfile", "deploy/docker/tilt/Dockerfile", "deploy/jaeger/config.yaml"} {
		if !strings.Contains(doc, ref) {
			t.Errorf("docs/deploy.md does not mention %s", ref)
		}
		mustExist(t, "docs/deploy.md reference", ref)
	}
	for _, park := range overlays(t) {
		if !strings.Contains(doc, park) {
			t.Errorf("docs/deploy.md does not mention the overlay %s", park)
		}
	}
}
