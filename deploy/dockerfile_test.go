package deploy_test

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// dockerfile is a parsed Dockerfile: enough of the format (line
// continuations, comments, flags, ARG substitution, stages) to check what
// the images are made of without a container engine.
type dockerfile struct {
	path       string
	globalArgs map[string]string
	stages     []*stage
}

type stage struct {
	name   string // "" when unnamed
	from   string // the FROM argument, ARGs substituted
	parent *stage // the earlier stage it starts FROM, if any
	instrs []instr
}

type instr struct {
	line  int
	cmd   string            // upper case: RUN, COPY, …
	flags map[string]string // --from=…, --chown=…
	args  string            // the rest, flags removed
}

func parseDockerfile(tb testing.TB, rel string) *dockerfile {
	tb.Helper()
	df := &dockerfile{path: rel, globalArgs: map[string]string{}}
	var cur *stage
	var buf strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(readFile(tb, rel)))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && buf.Len() == 0) {
			continue // comments, also inside continuations, as docker does
		}
		if buf.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, "\\") {
			buf.WriteString(strings.TrimSuffix(line, "\\"))
			buf.WriteString(" ")
			continue
		}
		buf.WriteString(line)
		in := parseInstr(start, buf.String())
		buf.Reset()
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			st := &stage{from: substitute(f[0], df.globalArgs)}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			st.parent = df.stage(st.from)
			df.stages = append(df.stages, st)
			cur = st
		case "ARG":
			if cur == nil {
				k, v, _ := strings.Cut(in.args, "=")
				df.globalArgs[strings.TrimSpace(k)] = strings.TrimSpace(v)
				continue
			}
			fallthrough
		default:
			if cur == nil {
				tb.Fatalf("%s:%d: %s before the first FROM", rel, start, in.cmd)
			}
			cur.instrs = append(cur.instrs, in)
		}
	}
	if buf.Len() > 0 {
		tb.Fatalf("%s: ends inside a line continuation", rel)
	}
	return df
}

func parseInstr(line int, s string) instr {
	cmd, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
	in := instr{line: line, cmd: strings.ToUpper(cmd), flags: map[string]string{}}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		var flag string
		flag, rest, _ = strings.Cut(rest, " ")
		k, v, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		if in.flags[k] != "" {
			in.flags[k] += " "
		}
		in.flags[k] += v
		rest = strings.TrimSpace(rest)
	}
	in.args = rest
	return in
}

var argRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// substitute replaces ${NAME} and $NAME with vars[NAME].
func substitute(s string, vars map[string]string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "${}")
		return vars[name]
	})
}

func (df *dockerfile) stage(name string) *stage {
	for _, st := range df.stages {
		if st.name != "" && st.name == name {
			return st
		}
	}
	return nil
}

// vars returns the ARG defaults and ENV values in effect at the end of st,
// including those of the stages it is built FROM.
func (st *stage) vars(global map[string]string) map[string]string {
	v := map[string]string{}
	if st.parent != nil {
		v = st.parent.vars(global)
	}
	for _, in := range st.instrs {
		switch in.cmd {
		case "ARG":
			k, def, _ := strings.Cut(in.args, "=")
			k = strings.TrimSpace(k)
			if def == "" {
				def = global[k]
			}
			v[k] = def
		case "ENV":
			for _, kv := range shellWords(in.args) {
				if k, val, ok := strings.Cut(kv, "="); ok {
					v[k] = substitute(val, v)
				}
			}
		}
	}
	return v
}

// last returns the last instruction cmd of st or of the stages it is
// built FROM (what the image ends up with: USER, ENTRYPOINT, CMD).
func (st *stage) last(cmd string) *instr {
	for s := st; s != nil; s = s.parent {
		for i := len(s.instrs) - 1; i >= 0; i-- {
			if s.instrs[i].cmd == cmd {
				return &s.instrs[i]
			}
		}
	}
	return nil
}

// files returns the absolute paths st and its parents COPY files to: a
// destination ending in "/" receives the sources' base names.
func (st *stage) files() []string {
	var out []string
	for s := st; s != nil; s = s.parent {
		for _, in := range s.instrs {
			if in.cmd != "COPY" {
				continue
			}
			f := strings.Fields(in.args)
			dest := f[len(f)-1]
			if !strings.HasSuffix(dest, "/") {
				out = append(out, dest)
				continue
			}
			for _, src := range f[:len(f)-1] {
				out = append(out, path.Join(dest, path.Base(src)))
			}
		}
	}
	return out
}

// shellWords splits a shell command line into words, honouring single and
// double quotes and backslashes (enough for the RUN lines we write).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(s) {
				i++
				w.WriteByte(s[i])
			} else {
				w.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// goBuild is one `go build` of a RUN instruction.
type goBuild struct {
	env      []string // NAME=value before `go`
	flags    []string // everything but -o and the packages
	out      string   // -o
	packages []string
}

// goBuilds returns the go build commands of st's RUN instructions.
func goBuilds(st *stage) []goBuild {
	var out []goBuild
	for _, in := range st.instrs {
		if in.cmd != "RUN" {
			continue
		}
		words := shellWords(in.args)
		for i := 0; i+1 < len(words); i++ {
			if words[i] != "go" || words[i+1] != "build" {
				continue
			}
			var b goBuild
			for j := i - 1; j >= 0 && strings.Contains(words[j], "=") && !strings.HasPrefix(words[j], "-"); j-- {
				b.env = append(b.env, words[j])
			}
			for j := i + 2; j < len(words) && !slices.Contains([]string{"&&", ";", "||", "|"}, words[j]); j++ {
				switch w := words[j]; {
				case w == "-o" && j+1 < len(words):
					j++
					b.out = words[j]
				case strings.HasPrefix(w, "-"):
					b.flags = append(b.flags, w)
				default:
					b.packages = append(b.packages, w)
				}
			}
			out = append(out, b)
		}
	}
	return out
}

// copiesFromContext reports whether st COPYs from the build context (the
// repository), i.e. builds ParkMesh's own code.
func copiesFromContext(st *stage) bool {
	for _, in := range st.instrs {
		if in.cmd == "COPY" && in.flags["from"] == "" {
			return true
		}
	}
	return false
}

// allowedBases are the only images the Dockerfiles pull: a new one is a
// decision, to be made here on purpose.
var allowedBases = map[string]bool{"golang": true, "busybox": true}

func checkStages(t *testing.T, df *dockerfile) {
	seen := map[string]bool{}
	for _, st := range df.stages {
		where := fmt.Sprintf("%s stage %q", df.path, st.name)
		switch repo, tag, registry := imageRef(st.from); {
		case st.parent != nil, st.from == "scratch":
		case !allowedBases[repo] || registry:
			t.Errorf("%s: FROM %s is not a stage, scratch or an allowed base image (%v)", where, st.from, allowedBases)
		case tag == "" || tag == "latest":
			t.Errorf("%s: base image %s has no pinned tag", where, st.from)
		}
		for _, in := range st.instrs {
			if in.cmd != "COPY" {
				continue
			}
			f := strings.Fields(in.args)
			if len(f) < 2 {
				t.Errorf("%s:%d: COPY needs a source and a destination", df.path, in.line)
				continue
			}
			if from := in.flags["from"]; from != "" {
				if !seen[from] {
					t.Errorf("%s:%d: COPY --from=%s names no earlier stage", df.path, in.line, from)
				}
				continue
			}
			for _, src := range f[:len(f)-1] {
				mustExist(t, fmt.Sprintf("%s:%d: COPY source", df.path, in.line), src)
			}
		}
		if st.name != "" {
			seen[st.name] = true
		}
	}
}

// checkNoFrontendImage: a "# syntax=" parser directive makes BuildKit pull
// a Dockerfile frontend image, an image the park did not choose.
func checkNoFrontendImage(t *testing.T, rel string) {
	for _, line := range strings.Split(readFile(t, rel), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		if d := strings.ToLower(strings.ReplaceAll(line, " ", "")); strings.HasPrefix(d, "#syntax=") {
			t.Errorf("%s: %q pulls a Dockerfile frontend image", rel, line)
		}
	}
}

// checkDockerignore: the build context never holds local data or keys
// (.parkmesh holds the demo's keys), and holds everything the COPYs need.
func checkDockerignore(t *testing.T, df *dockerfile) {
	rel := df.path + ".dockerignore"
	var patterns []string
	for _, line := range strings.Split(readFile(t, rel), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, path.Clean(line))
		}
	}
	for _, must := range []string{".git", ".parkmesh"} {
		if !slices.Contains(patterns, must) {
			t.Errorf("%s does not exclude %s from the build context", rel, must)
		}
	}
	for _, st := range df.stages {
		for _, in := range st.instrs {
			if in.cmd != "COPY" || in.flags["from"] != "" {
				continue
			}
			f := strings.Fields(in.args)
			for _, src := range f[:len(f)-1] {
				for _, p := range patterns {
					if strings.ContainsAny(p, "*?[") {
						if ok, _ := path.Match(strings.TrimPrefix(p, "**/"), path.Base(src)); ok {
							t.Errorf("%s:%d: COPY %s, which %s excludes (%s)", df.path, in.line, src, rel, p)
						}
					} else if src == p || strings.HasPrefix(path.Clean(src), p+"/") {
						t.Errorf("%s:%d: COPY %s, which %s excludes (%s)", df.path, in.line, src, rel, p)
					}
				}
			}
		}
	}
}

// checkTarget checks an image target: unprivileged user, an entrypoint or
// command that the image holds.
func checkTarget(t *testing.T, df *dockerfile, target string) {
	st := df.stage(target)
	if st == nil {
		t.Errorf("%s has no stage %q", df.path, target)
		return
	}
	where := df.path + " target " + target
	if u := st.last("USER"); u == nil || u.args != "65532:65532" {
		t.Errorf("%s: USER is %v, want 65532:65532 (non-root, as the manifests' runAsUser)", where, u)
	}
	run := st.last("ENTRYPOINT")
	if run == nil {
		run = st.last("CMD")
	}
	if run == nil {
		t.Errorf("%s: neither ENTRYPOINT nor CMD", where)
		return
	}
	var argv []string
	if err := json.Unmarshal([]byte(run.args), &argv); err != nil || len(argv) == 0 {
		t.Errorf("%s:%d: %s is not in exec (JSON) form: %s", df.path, run.line, run.cmd, run.args)
		return
	}
	if path.IsAbs(argv[0]) && !slices.Contains(st.files(), argv[0]) {
		t.Errorf("%s: %s runs %s, which no COPY puts in the image", where, run.cmd, argv[0])
	}
}

func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t, "deploy/docker/Dockerfile")
	checkStages(t, df)
	checkNoFrontendImage(t, df.path)
	checkDockerignore(t, df)

	goImage := df.globalArgs["GO_IMAGE"]
	if v := goVersion(t); goImage != "golang:"+v && !strings.HasPrefix(goImage, "golang:"+v+"-") {
		t.Errorf("GO_IMAGE %q does not build with go.mod's Go %s", goImage, v)
	}
	for _, target := range []string{"directory", "project", "talent", "gateway", "admin", "consul", "jaeger"} {
		checkTarget(t, df, target)
	}

	// Consul and Jaeger are the versions the project tests with.
	pins := []struct{ stage, arg, script, variable string }{
		{"consul-build", "CONSUL_VERSION", "deploy/tools/install-consul.sh", "CONSUL_VERSION"},
		{"jaeger-build", "JAEGER_VERSION", "deploy/tools/install-jaeger.sh", "JAEGER_VERSION"},
		{"jaeger-build", "JAEGER_V2_VERSION", "deploy/tools/install-jaeger.sh", "JAEGER_V2_VERSION"},
	}
	for _, p := range pins {
		st := df.stage(p.stage)
		if st == nil {
			t.Errorf("no stage %s", p.stage)
			continue
		}
		if got, want := st.vars(df.globalArgs)[p.arg], scriptDefault(t, p.script, p.variable); got != want {
			t.Errorf("stage %s: %s = %q, %s pins %q", p.stage, p.arg, got, p.script, want)
		}
	}
}

// TestJaegerListensOnAllInterfaces: deploy/jaeger/config.yaml keeps every
// address on loopback for the local demo; the image must move each one to
// 0.0.0.0 (same port), or the other containers could not reach it.
func TestJaegerListensOnAllInterfaces(t *testing.T) {
	df := parseDockerfile(t, "deploy/docker/Dockerfile")
	st := df.stage("jaeger")
	if st == nil {
		t.Fatal("no jaeger stage")
	}
	if !slices.Contains(st.files(), "/etc/jaeger/config.yaml") {
		t.Fatal("the jaeger image holds no /etc/jaeger/config.yaml")
	}
	vars := st.vars(df.globalArgs)
	addrs := regexp.MustCompile(`\$\{env:(PARKMESH_JAEGER_\w+_ADDR):-([^}]+)\}`).FindAllStringSubmatch(readFile(t, "deploy/jaeger/config.yaml"), -1)
	if len(addrs) == 0 {
		t.Fatal("deploy/jaeger/config.yaml has no ${env:PARKMESH_JAEGER_…_ADDR:-…} addresses")
	}
	for _, a := range addrs {
		_, port, _ := strings.Cut(a[2], ":")
		if got, want := vars[a[1]], "0.0.0.0:"+port; got != want {
			t.Errorf("jaeger image: %s = %q, want %q", a[1], got, want)
		}
	}
}

func TestTiltDockerfile(t *testing.T) {
	df := parseDockerfile(t, "deploy/docker/tilt/Dockerfile")
	checkNoFrontendImage(t, df.path)
	if len(df.stages) != 1 {
		t.Fatalf("%d stages, want 1", len(df.stages))
	}
	st := df.stages[0]
	if _, tag, _ := imageRef(st.from); !strings.HasPrefix(st.from, "busybox:") || tag == "" {
		t.Errorf("FROM %s: want a pinned busybox (live update needs its tar)", st.from)
	}
	if main := parseDockerfile(t, "deploy/docker/Dockerfile"); df.globalArgs["BUSYBOX_IMAGE"] != main.globalArgs["BUSYBOX_IMAGE"] {
		t.Errorf("BUSYBOX_IMAGE %q differs from deploy/docker/Dockerfile's %q", df.globalArgs["BUSYBOX_IMAGE"], main.globalArgs["BUSYBOX_IMAGE"])
	}
	if u := st.last("USER"); u == nil || u.args != "65532:65532" {
		t.Errorf("USER is %v, want 65532:65532", u)
	}
	ep := st.last("ENTRYPOINT")
	if ep == nil || ep.args != `["/app/devrun", "/app/bin/app"]` {
		t.Errorf("ENTRYPOINT %v: want devrun running /app/bin/app (what the Tiltfile syncs)", ep)
	}
	for _, f := range []string{"/app/devrun", "/app/bin/app"} {
		if !slices.Contains(st.files(), f) {
			t.Errorf("no COPY puts %s in the image", f)
		}
	}
}

var (
	binOnce  sync.Once
	binDir   string
	binErr   error
	binBuilt []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// dockerfileBinaries builds, once per test run, every ParkMesh binary the
// Dockerfile builds, with the Dockerfile's environment, flags and packages,
// and returns the directory holding them and their names.
func dockerfileBinaries(tb testing.TB) (string, []string) {
	tb.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "parkmesh-dockerfile-bin-")
		if binErr != nil {
			return
		}
		df := parseDockerfile(tb, "deploy/docker/Dockerfile")
		for _, st := range df.stages {
			if !copiesFromContext(st) {
				continue // Consul and Jaeger: other modules, pinned above
			}
			vars := st.vars(df.globalArgs)
			for _, b := range goBuilds(st) {
				if err := runGoBuild(tb, st, vars, b); err != nil {
					binErr = err
					return
				}
			}
		}
	})
	if binErr != nil {
		tb.Fatal(binErr)
	}
	return binDir, binBuilt
}

func runGoBuild(tb testing.TB, st *stage, vars map[string]string, b goBuild) error {
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		return fmt.Errorf("stage %s: go build without CGO_ENABLED=0: the images are FROM scratch and need static binaries", st.name)
	}
	if !slices.Contains(b.flags, "-trimpath") {
		return fmt.Errorf("stage %s: go build without -trimpath", st.name)
	}
	if b.out == "" || len(b.packages) == 0 {
		return fmt.Errorf("stage %s: go build without -o or packages", st.name)
	}
	for _, p := range b.packages {
		if !strings.HasPrefix(p, "./") {
			return fmt.Errorf("stage %s: go build package %q is not a path in the repository", st.name, p)
		}
		binBuilt = append(binBuilt, path.Base(p))
	}
	args := append(append([]string{"build"}, b.flags...), "-o", binDir+string(filepath.Separator))
	cmd := exec.Command("go", append(args, b.packages...)...)
	cmd.Dir = repoRoot(tb)
	cmd.Env = append(os.Environ(), "GOOS=linux")
	for _, k := range []string{"GOTOOLCHAIN", "GOFLAGS"} {
		if v, ok := vars[k]; ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stage %s: %s %s: %v\n%s", st.name, strings.Join(b.env, " "), strings.Join(cmd.Args, " "), err, out)
	}
	return nil
}

func TestDockerfileBinariesBuild(t *testing.T) {
	dir, names := dockerfileBinaries(t)
	df := parseDockerfile(t, "deploy/docker/Dockerfile")
	// Every binary a target copies out of the build stages was built.
	for _, st := range df.stages {
		for _, in := range st.instrs {
			from := df.stage(in.flags["from"])
			if in.cmd != "COPY" || from == nil || !copiesFromContext(from) {
				continue
			}
			f := strings.Fields(in.args)
			for _, src := range f[:len(f)-1] {
				if strings.Contains(src, "/bin/") && !slices.Contains(names, path.Base(src)) {
					t.Errorf("%s:%d: copies %s, which no go build of stage %s makes", df.path, in.line, src, from.name)
				}
			}
		}
	}
	// And each is static: no interpreter, nothing dynamic (FROM scratch).
	for _, n := range names {
		f, err := elf.Open(filepath.Join(dir, n))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked; it would not run FROM scratch", n)
				break
			}
		}
		f.Close()
	}
	for _, want := range []string{"directory", "project", "talent", "gateway", "parkmesh", "loadsample", "probe"} {
		if !slices.Contains(names, want) {
			t.Errorf("the Dockerfile does not build %s", want)
		}
	}
}

func TestShellWords(t *testing.T) {
	got := shellWords(`CGO_ENABLED=0 go build -ldflags="-s -w" -o /out/ './a b' x\ y`)
	want := []string{"CGO_ENABLED=0", "go", "build", "-ldflags=-s -w", "-o", "/out/", "./a b", "x y"}
	if !slices.Equal(got, want) {
		t.Errorf("shellWords = %q, want %q", got, want)
	}
}
