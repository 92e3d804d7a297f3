package configcheck

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The Dockerfiles are read line by line: continuations joined, comments
// dropped, instructions grouped by stage. That is enough to state what the
// images must be; building them needs a container engine, which no project
// machine has.

const dockerfilePath = "deploy/docker/Dockerfile"

type dockerfile struct {
	path   string
	args   map[string]string // ARG defaults before the first FROM
	stages []dfStage
}

type dfStage struct {
	from, name string
	instrs     []string // "CMD arguments", continuations joined
}

func readDockerfile(tb testing.TB, rel string) *dockerfile {
	tb.Helper()
	df := &dockerfile{path: rel, args: map[string]string{}}
	var joined strings.Builder
	for line := range strings.SplitSeq(readFile(tb, rel), "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "#") || (t == "" && joined.Len() == 0) {
			continue // comments, also inside continuations, as docker does
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			joined.WriteString(s + " ")
			continue
		}
		joined.WriteString(line)
		instr := strings.Join(strings.Fields(joined.String()), " ")
		joined.Reset()
		cmd, rest, _ := strings.Cut(instr, " ")
		switch strings.ToUpper(cmd) {
		case "FROM":
			f := strings.Fields(rest)
			st := dfStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
		case "ARG":
			if len(df.stages) == 0 {
				k, v, _ := strings.Cut(rest, "=")
				df.args[k] = v
				continue
			}
			fallthrough
		default:
			if len(df.stages) == 0 {
				tb.Fatalf("%s: %s before the first FROM", rel, cmd)
			}
			st := &df.stages[len(df.stages)-1]
			st.instrs = append(st.instrs, strings.ToUpper(cmd)+" "+rest)
		}
	}
	if joined.Len() > 0 {
		tb.Fatalf("%s ends inside a line continuation", rel)
	}
	return df
}

// chain returns stage name and the stages it is built FROM, nearest first.
func (df *dockerfile) chain(name string) []dfStage {
	var out []dfStage
	for {
		i := slices.IndexFunc(df.stages, func(s dfStage) bool { return s.name == name })
		if i < 0 || len(out) > len(df.stages) {
			return out
		}
		out = append(out, df.stages[i])
		name = df.stages[i].from
	}
}

// last returns the arguments of the last cmd instruction in the chain of
// stage name (what the image ends up with: USER, ENTRYPOINT).
func (df *dockerfile) last(name, cmd string) string {
	for _, st := range df.chain(name) {
		for i := len(st.instrs) - 1; i >= 0; i-- {
			if rest, ok := strings.CutPrefix(st.instrs[i], cmd+" "); ok {
				return rest
			}
		}
	}
	return ""
}

// env returns the ENV values in the chain of stage name.
func (df *dockerfile) env(name string) map[string]string {
	env := map[string]string{}
	chain := df.chain(name)
	for i := len(chain) - 1; i >= 0; i-- {
		for _, in := range chain[i].instrs {
			if rest, ok := strings.CutPrefix(in, "ENV "); ok {
				for _, kv := range strings.Fields(rest) {
					if k, v, ok := strings.Cut(kv, "="); ok {
						env[k] = v
					}
				}
			}
		}
	}
	return env
}

// instrs returns every instruction in the chain of stage name.
func (df *dockerfile) instrs(name string) []string {
	var all []string
	for _, st := range df.chain(name) {
		all = append(all, st.instrs...)
	}
	return all
}

const nonRootUser = "65532:65532"

func TestDockerfile(t *testing.T) {
	df := readDockerfile(t, dockerfilePath)
	checkNoFrontendImage(t, dockerfilePath)

	// Base images: golang of go.mod's version, a pinned busybox, scratch.
	if v, goImage := goVersion(t), df.args["GO_IMAGE"]; !strings.HasPrefix(goImage, "golang:"+v+"-") && goImage != "golang:"+v {
		t.Errorf("GO_IMAGE %q is not go.mod's Go %s", goImage, v)
	}
	if b := df.args["BUSYBOX_IMAGE"]; !regexp.MustCompile(`^busybox:[0-9]`).MatchString(b) {
		t.Errorf("BUSYBOX_IMAGE %q is not a pinned busybox", b)
	}
	var names []string
	for _, st := range df.stages {
		if !slices.Contains([]string{"scratch", "${GO_IMAGE}", "${BUSYBOX_IMAGE}"}, st.from) && !slices.Contains(names, st.from) {
			t.Errorf("stage %s: FROM %s is neither scratch, GO_IMAGE, BUSYBOX_IMAGE nor an earlier stage", st.name, st.from)
		}
		names = append(names, st.name)
		for _, in := range st.instrs {
			// Static binaries: the images are FROM scratch.
			if strings.HasPrefix(in, "RUN ") && strings.Contains(in, "go build") &&
				(!strings.Contains(in, "CGO_ENABLED=0 go build") || !strings.Contains(in, "-trimpath")) {
				t.Errorf("stage %s: a go build without CGO_ENABLED=0 and -trimpath: %s", st.name, in)
			}
		}
	}

	builds := strings.Join(df.instrs("build"), "\n")
	processes := map[string]string{"gateway": "./gateway/cmd/gateway"}
	for name := range servicePorts {
		processes[name] = "./services/" + name + "/cmd/" + name
	}
	for name, pkg := range processes {
		where := dockerfilePath + " target " + name
		chain := df.chain(name)
		if len(chain) == 0 {
			t.Errorf("%s: no such stage", where)
			continue
		}
		if root := chain[len(chain)-1]; root.from != "scratch" {
			t.Errorf("%s: built FROM %s, want scratch at the root (static binary, no shell)", where, root.from)
		}
		if !strings.Contains(builds, " "+pkg+" ") && !strings.HasSuffix(builds, " "+pkg) {
			t.Errorf("%s: stage build does not build %s", where, pkg)
		}
		bin := "/usr/local/bin/" + name
		if !slices.Contains(df.instrs(name), "COPY --from=build /out/bin/"+name+" "+bin) {
			t.Errorf("%s: does not COPY /out/bin/%s from the build stage to %s", where, name, bin)
		}
		if ep := df.last(name, "ENTRYPOINT"); ep != `["`+bin+`"]` {
			t.Errorf("%s: ENTRYPOINT %s, want [%q]", where, ep, bin)
		}
	}
	for _, name := range []string{"directory", "project", "talent", "gateway", "admin", "consul", "jaeger"} {
		if u := df.last(name, "USER"); u != nonRootUser {
			t.Errorf("%s target %s: USER %q, want %s (non-root, the manifests' runAsUser)", dockerfilePath, name, u, nonRootUser)
		}
	}

	// Where each process listens, and what the image declares.
	listens := map[string]map[string]int{"gateway": {"PARKMESH_LISTEN": gatewayParkPort, "PARKMESH_FEDERATION_LISTEN": gatewayFederationPort}}
	for name, port := range servicePorts {
		listens[name] = map[string]int{"PARKMESH_LISTEN": port}
	}
	for name, vars := range listens {
		env := df.env(name)
		exposed := strings.Fields(df.last(name, "EXPOSE"))
		for k, port := range vars {
			if got, want := env[k], "0.0.0.0:"+strconv.Itoa(port); got != want {
				t.Errorf("%s target %s: %s=%q, want %q", dockerfilePath, name, k, got, want)
			}
			if !slices.Contains(exposed, strconv.Itoa(port)) {
				t.Errorf("%s target %s: EXPOSE %v lacks %d", dockerfilePath, name, exposed, port)
			}
		}
		if len(exposed) != len(vars) {
			t.Errorf("%s target %s: EXPOSE %v, want exactly the ports of %v", dockerfilePath, name, exposed, vars)
		}
	}

	// Consul and Jaeger are the versions the project tests with.
	pins := []struct{ stage, arg, script string }{
		{"consul-build", "CONSUL_VERSION", "deploy/tools/install-consul.sh"},
		{"jaeger-build", "JAEGER_VERSION", "deploy/tools/install-jaeger.sh"},
		{"jaeger-build", "JAEGER_V2_VERSION", "deploy/tools/install-jaeger.sh"},
	}
	for _, p := range pins {
		want := "ARG " + p.arg + "=" + scriptDefault(t, p.script, p.arg)
		if !slices.Contains(df.instrs(p.stage), want) {
			t.Errorf("stage %s lacks %q, the version %s pins", p.stage, want, p.script)
		}
	}

	// The build context never holds local data or keys.
	ignore := strings.Fields(readFile(t, dockerfilePath+".dockerignore"))
	for _, must := range []string{".git", ".parkmesh"} {
		if !slices.Contains(ignore, must) {
			t.Errorf("%s.dockerignore does not exclude %s from the build context", dockerfilePath, must)
		}
	}
}

// checkNoFrontendImage: a "# syntax=" parser directive makes BuildKit pull
// a Dockerfile frontend image, an image the park did not choose.
func checkNoFrontendImage(t *testing.T, rel string) {
	for line := range strings.SplitSeq(readFile(t, rel), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		if d := strings.ToLower(strings.ReplaceAll(line, " ", "")); strings.HasPrefix(d, "#syntax=") {
			t.Errorf("%s: %q pulls a Dockerfile frontend image", rel, line)
		}
	}
}

// TestJaegerListensOnAllInterfaces: deploy/jaeger/config.yaml keeps every
// address on loopback for the local demo; the image must move each one to
// 0.0.0.0 (same port), or the other containers could not reach it.
func TestJaegerListensOnAllInterfaces(t *testing.T) {
	env := readDockerfile(t, dockerfilePath).env("jaeger")
	addrs := regexp.MustCompile(`\$\{env:(PARKMESH_JAEGER_\w+_ADDR):-([^}]+)\}`).FindAllStringSubmatch(readFile(t, "deploy/jaeger/config.yaml"), -1)
	if len(addrs) == 0 {
		t.Fatal("deploy/jaeger/config.yaml has no ${env:PARKMESH_JAEGER_…_ADDR:-…} addresses")
	}
	for _, a := range addrs {
		_, port, _ := strings.Cut(a[2], ":")
		if got, want := env[a[1]], "0.0.0.0:"+port; got != want {
			t.Errorf("jaeger image: %s = %q, want %q", a[1], got, want)
		}
	}
}

func TestTiltDockerfile(t *testing.T) {
	const rel = "deploy/docker/tilt/Dockerfile"
	df := readDockerfile(t, rel)
	checkNoFrontendImage(t, rel)
	if len(df.stages) != 1 || df.stages[0].from != "${BUSYBOX_IMAGE}" {
		t.Fatalf("%s: want one stage FROM ${BUSYBOX_IMAGE} (live update needs its tar)", rel)
	}
	if got, want := df.args["BUSYBOX_IMAGE"], readDockerfile(t, dockerfilePath).args["BUSYBOX_IMAGE"]; got != want {
		t.Errorf("%s: BUSYBOX_IMAGE %q differs from %s's %q", rel, got, dockerfilePath, want)
	}
	df.stages[0].name = "dev"
	if u := df.last("dev", "USER"); u != nonRootUser {
		t.Errorf("%s: USER %q, want %s", rel, u, nonRootUser)
	}
	// What the Tiltfile's live update syncs (/app/bin/app) is what runs.
	if ep := df.last("dev", "ENTRYPOINT"); ep != `["/app/devrun", "/app/bin/app"]` {
		t.Errorf("%s: ENTRYPOINT %s, want devrun running /app/bin/app", rel, ep)
	}
}
