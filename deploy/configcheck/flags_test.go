package configcheck

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The files that define each binary's flags, read with a regexp (building
// the binaries would tie this module to the product's). When a flag set
// moves, change its one constant here.
const (
	gatewayFlagsFile    = "gateway/app/app.go"
	serviceFlagsFile    = "services/listingservice/main.go" // directory, project, talent
	loadsampleFlagsFile = "deploy/docker/cmd/loadsample/main.go"
	consulaclFlagsFile  = "deploy/docker/cmd/consulacl/main.go"
)

// flagDef matches a flag.FlagSet definition: fs.StringVar(&x, "name", …),
// fs.Duration("name", …) and the like.
var flagDef = regexp.MustCompile(`\b\w+\.(?:Bool|Duration|Float64|Int|Int64|String|Uint|Uint64|Func|BoolFunc|TextVar|Var)(?:Var)?\(\s*(?:&?[\w.\[\]]+,\s*)?"([a-z][a-z0-9-]*)",`)

// flagsIn returns the flags file defines; it fails unless they include
// must, so a flag set that moved is reported as such.
func flagsIn(tb testing.TB, file string, must ...string) map[string]bool {
	tb.Helper()
	flags := map[string]bool{}
	for _, m := range flagDef.FindAllStringSubmatch(readFile(tb, file), -1) {
		flags[m[1]] = true
	}
	for _, f := range must {
		if !flags[f] {
			tb.Fatalf("%s defines no flag -%s (found %v): did the flags move? Update the constant in flags_test.go", file, f, slices.Sorted(maps.Keys(flags)))
		}
	}
	return flags
}

func gatewayFlags(tb testing.TB) map[string]bool {
	return flagsIn(tb, gatewayFlagsFile, "listen", "federation-listen", "public-url", "park", "data-dir", "consul", "advertise")
}

func serviceFlags(tb testing.TB) map[string]bool {
	return flagsIn(tb, serviceFlagsFile, "listen", "park", "data-dir", "consul", "advertise")
}

// envName is the environment fallback of a flag (pkg/cliflag).
func envName(flag string) string {
	return "PARKMESH_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func envNames(flags map[string]bool) map[string]bool {
	env := map[string]bool{}
	for f := range flags {
		env[envName(f)] = true
	}
	return env
}

func TestFlagDefinitionPattern(t *testing.T) {
	src := `fs.StringVar(&m.Config.Listen, "listen", "127.0.0.1:8080", "…")
	fs.DurationVar(&m.Config.Feed.Heartbeat, "feed-heartbeat", 15*time.Second, "…")
	n := fs.Int("limit", 5, "…")
	q.Get("not-a-flag")`
	var got []string
	for _, m := range flagDef.FindAllStringSubmatch(src, -1) {
		got = append(got, m[1])
	}
	if want := []string{"listen", "feed-heartbeat", "limit"}; !slices.Equal(got, want) {
		t.Errorf("flag definitions found %v, want %v", got, want)
	}
}

// docFlags returns the flags docs/deploy.md's Configuration tables list,
// by table ("services", "gateway").
func docFlags(t *testing.T) map[string]map[string]bool {
	doc := readFile(t, "docs/deploy.md")
	_, section, ok := strings.Cut(doc, "\n## Configuration\n")
	if !ok {
		t.Fatal("docs/deploy.md has no ## Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	tables := map[string]map[string]bool{}
	current := ""
	flagRef := regexp.MustCompile("`-([a-z][a-z0-9-]*)`")
	for line := range strings.SplitSeq(section, "\n") {
		switch {
		case strings.HasPrefix(line, "Services"):
			current = "services"
		case strings.HasPrefix(line, "Gateway"):
			current = "gateway"
		case strings.HasPrefix(line, "|") && current != "":
			cell := strings.Split(line, "|")[1]
			for _, m := range flagRef.FindAllStringSubmatch(cell, -1) {
				if tables[current] == nil {
					tables[current] = map[string]bool{}
				}
				tables[current][m[1]] = true
			}
		}
	}
	for _, want := range []string{"services", "gateway"} {
		if len(tables[want]) == 0 {
			t.Fatalf("docs/deploy.md, Configuration: no %s flag table", want)
		}
	}
	return tables
}

// TestDocsDescribeTheFlags: docs/deploy.md's flag tables list exactly the
// flags the gateway and the services define.
func TestDocsDescribeTheFlags(t *testing.T) {
	doc := docFlags(t)
	for table, defined := range map[string]map[string]bool{"gateway": gatewayFlags(t), "services": serviceFlags(t)} {
		for f := range doc[table] {
			if !defined[f] {
				t.Errorf("docs/deploy.md documents %s flag -%s, which does not exist", table, f)
			}
		}
		for f := range defined {
			if !doc[table][f] {
				t.Errorf("docs/deploy.md does not document %s flag -%s", table, f)
			}
		}
	}
}

// adminCLIEnv are the variables the parkmesh CLI reads (gateway/admin).
var adminCLIEnv = map[string]bool{"PARKMESH_DATA_DIR": true, "PARKMESH_PARK": true, "PARKMESH_GATEWAY": true, "PARKMESH_ADMIN_TOKEN": true}

// TestEnvironmentNamesFlags: a PARKMESH_ variable that names no flag is
// silently ignored by the process, so every one the deployment files set
// must be a flag of the binary it is given to.
func TestEnvironmentNamesFlags(t *testing.T) {
	gateway, services := envNames(gatewayFlags(t)), envNames(serviceFlags(t))
	loadsample := envNames(flagsIn(t, loadsampleFlagsFile, "park", "gateway", "data-dir"))
	consulacl := envNames(flagsIn(t, consulaclFlagsFile, "consul", "management-token-file", "token-dir"))
	byProcess := map[string]map[string]bool{"gateway": gateway}
	for name := range servicePorts {
		byProcess[name] = services
	}
	check := func(where, name string, known map[string]bool) {
		if strings.HasPrefix(name, "PARKMESH_") && !known[name] {
			t.Errorf("%s sets %s, which names no flag of the program it runs", where, name)
		}
	}

	for _, s := range loadCompose(t).Services {
		where := composeFile + " service " + s.Name
		switch {
		case s.Build != nil && byProcess[s.Build.Target] != nil:
			for k := range s.Environment {
				check(where, k, byProcess[s.Build.Target])
			}
		case s.Labels["org.parkmesh.role"] != roleJob || len(s.Command) == 0:
			// Consul and Jaeger read no PARKMESH_ variables.
		case s.Command[0] == "loadsample":
			for k := range s.Environment {
				check(where, k, loadsample)
			}
		case s.Command[0] == "consulacl":
			for k := range s.Environment {
				check(where, k, consulacl)
			}
		default:
			// A job script reads its own variables and the CLI's.
			script := readFile(t, "deploy/docker/scripts/"+s.Command[0])
			for k := range s.Environment {
				if !strings.Contains(script, k) && !adminCLIEnv[k] {
					t.Errorf("%s sets %s, which neither %s nor the admin CLI reads", where, k, s.Command[0])
				}
			}
		}
	}

	for _, park := range overlays(t) {
		dir := "k8s/overlays/" + park
		m := decodeStrict(t, dir, render(t, dir))
		for _, w := range m.workloads() {
			if known := byProcess[w.name]; known != nil {
				for _, e := range w.template.Spec.Containers[0].Env {
					check(dir+" "+w.name, e.Name, known)
				}
			}
		}
		// The ConfigMap goes to every process: each key is someone's flag.
		for _, cm := range m.configMaps {
			for k := range cm.Data {
				check(dir+" ConfigMap "+cm.Name, k, union(gateway, services))
			}
		}
	}

	df := readDockerfile(t, dockerfilePath)
	for name, known := range byProcess {
		for k := range df.env(name) {
			check(dockerfilePath+" target "+name, k, known)
		}
	}
}

func union(a, b map[string]bool) map[string]bool {
	u := maps.Clone(a)
	maps.Copy(u, b)
	return u
}
