package deploy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
	"sigs.k8s.io/yaml"
)

// Tilt cannot run here (no cluster, and it does not install offline), so
// the Tiltfile runs in a Starlark interpreter — the language Tilt embeds,
// with Tilt's dialect options — where Tilt's functions are stand-ins that
// accept Tilt's own keywords and record what they are given. kustomize()
// really renders the overlay. What the Tiltfile would ask Tilt to build,
// deploy, forward and run is then checked against the repository.

// tiltCall is one recorded call.
type tiltCall struct {
	fn   string
	name string // the resource, image or workload it names
	kw   map[string]starlark.Value
}

func (c tiltCall) str(k string) string {
	if s, ok := c.kw[k].(starlark.String); ok {
		return string(s)
	}
	return ""
}

func (c tiltCall) strs(k string) []string {
	var out []string
	switch v := c.kw[k].(type) {
	case starlark.String:
		out = append(out, string(v))
	case starlark.Indexable:
		for i := 0; i < v.Len(); i++ {
			if s, ok := v.Index(i).(starlark.String); ok {
				out = append(out, string(s))
			}
		}
	}
	return out
}

// tiltRun is what one execution of the Tiltfile asked for.
type tiltRun struct {
	localResources []tiltCall
	dockerBuilds   []tiltCall
	k8sResources   []tiltCall
	objects        []map[string]any
	syncs          []tiltCall
	links          []string
	kustomized     []string
}

// blob is Tilt's Blob: text, where a plain string would be a path.
type blob string

func (b blob) String() string        { return string(b) }
func (b blob) Type() string          { return "blob" }
func (b blob) Freeze()               {}
func (b blob) Truth() starlark.Bool  { return len(b) > 0 }
func (b blob) Hash() (uint32, error) { return starlark.String(b).Hash() }

// Tilt's keywords (internal/tiltfile in tilt-dev/tilt): a misspelt keyword
// fails here as it would in Tilt.
var (
	localResourceKw = []string{"name", "cmd?", "deps?", "trigger_mode?", "resource_deps?", "ignore?", "auto_init?",
		"serve_cmd?", "cmd_bat?", "serve_cmd_bat?", "allow_parallel?", "links?", "labels?", "tags?", "env?",
		"serve_env?", "readiness_probe?", "dir?", "serve_dir?"}
	dockerBuildKw = []string{"ref", "context", "build_args?", "dockerfile?", "dockerfile_contents?", "cache?",
		"live_update?", "match_in_env_vars?", "ignore?", "only?", "entrypoint?", "container_args?", "target?",
		"ssh?", "secret?", "network?", "extra_tag?", "cache_from?", "pull?", "platform?"}
	k8sResourceKw = []string{"workload?", "new_name?", "port_forwards?", "extra_pod_selectors?", "trigger_mode?",
		"resource_deps?", "objects?", "auto_init?", "pod_readiness?", "links?", "labels?", "discovery_strategy?"}
)

// record returns a builtin that checks the keywords and records the call.
func record(fn string, keywords []string, into *[]tiltCall) *starlark.Builtin {
	return starlark.NewBuiltin(fn, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		vals := make([]starlark.Value, len(keywords))
		pairs := make([]any, 0, 2*len(keywords))
		for i, k := range keywords {
			pairs = append(pairs, k, &vals[i])
		}
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, pairs...); err != nil {
			return nil, err
		}
		c := tiltCall{fn: fn, kw: map[string]starlark.Value{}}
		for i, k := range keywords {
			if vals[i] != nil {
				c.kw[strings.TrimSuffix(k, "?")] = vals[i]
			}
		}
		if s, ok := vals[0].(starlark.String); ok {
			c.name = string(s)
		}
		*into = append(*into, c)
		return starlark.None, nil
	})
}

// runTiltfile executes the Tiltfile with the given Tilt arguments
// (`tilt up -- --park X`).
func runTiltfile(t *testing.T, args map[string]starlark.Value) *tiltRun {
	t.Helper()
	run := &tiltRun{}
	defined := map[string]bool{}
	define := func(name string) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, b *starlark.Builtin, a starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var arg string
			var isArgs bool
			var usage string
			if err := starlark.UnpackArgs(b.Name(), a, kw, "name", &arg, "args?", &isArgs, "usage?", &usage); err != nil {
				return nil, err
			}
			defined[arg] = true
			return starlark.None, nil
		})
	}
	config := &starlarkstruct.Module{Name: "config", Members: starlark.StringDict{
		"define_string":      define("define_string"),
		"define_bool":        define("define_bool"),
		"define_string_list": define("define_string_list"),
		"parse": starlark.NewBuiltin("parse", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			d := starlark.NewDict(len(args))
			for k, v := range args {
				if !defined[k] {
					return nil, fmt.Errorf("config.parse: --%s is not defined", k)
				}
				d.SetKey(starlark.String(k), v)
			}
			return d, nil
		}),
	}}
	osPath := &starlarkstruct.Module{Name: "path", Members: starlark.StringDict{
		"exists": starlark.NewBuiltin("exists", func(_ *starlark.Thread, b *starlark.Builtin, a starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var p string
			if err := starlark.UnpackArgs(b.Name(), a, kw, "path", &p); err != nil {
				return nil, err
			}
			_, err := os.Stat(repoPath(t, p))
			return starlark.Bool(err == nil), nil
		}),
	}}
	predeclared := starlark.StringDict{
		"config":              config,
		"os":                  &starlarkstruct.Module{Name: "os", Members: starlark.StringDict{"path": osPath, "name": starlark.String("posix")}},
		"TRIGGER_MODE_AUTO":   starlark.String("auto"),
		"TRIGGER_MODE_MANUAL": starlark.String("manual"),
		"local_resource":      record("local_resource", localResourceKw, &run.localResources),
		"docker_build":        record("docker_build", dockerBuildKw, &run.dockerBuilds),
		"k8s_resource":        record("k8s_resource", k8sResourceKw, &run.k8sResources),
		"sync": starlark.NewBuiltin("sync", func(_ *starlark.Thread, b *starlark.Builtin, a starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var local, remote string
			if err := starlark.UnpackArgs(b.Name(), a, kw, "local_path", &local, "remote_path", &remote); err != nil {
				return nil, err
			}
			run.syncs = append(run.syncs, tiltCall{fn: "sync", name: local, kw: map[string]starlark.Value{"remote_path": starlark.String(remote)}})
			return starlarkstruct.FromStringDict(starlark.String("sync"), starlark.StringDict{
				"local_path": starlark.String(local), "remote_path": starlark.String(remote)}), nil
		}),
		"link": starlark.NewBuiltin("link", func(_ *starlark.Thread, b *starlark.Builtin, a starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var u, name string
			if err := starlark.UnpackArgs(b.Name(), a, kw, "url", &u, "name?", &name); err != nil {
				return nil, err
			}
			run.links = append(run.links, u)
			return starlarkstruct.FromStringDict(starlark.String("link"), starlark.StringDict{"url": starlark.String(u), "name": starlark.String(name)}), nil
		}),
		"kustomize": starlark.NewBuiltin("kustomize", func(_ *starlark.Thread, b *starlark.Builtin, a starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var dir string
			var bin, flags starlark.Value
			if err := starlark.UnpackArgs(b.Name(), a, kw, "paths", &dir, "kustomize_bin?", &bin, "flags?", &flags); err != nil {
				return nil, err
			}
			run.kustomized = append(run.kustomized, dir)
			return blob(render(t, dir)), nil
		}),
		"decode_yaml_stream": starlark.NewBuiltin("decode_yaml_stream", func(_ *starlark.Thread, b *starlark.Builtin, a starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var v starlark.Value
			if err := starlark.UnpackArgs(b.Name(), a, kw, "yaml", &v); err != nil {
				return nil, err
			}
			docs, err := yamlObjects([]byte(textOf(v)))
			if err != nil {
				return nil, err
			}
			list := make([]starlark.Value, len(docs))
			for i, d := range docs {
				list[i] = toStarlark(d)
			}
			return starlark.NewList(list), nil
		}),
		"encode_yaml_stream": starlark.NewBuiltin("encode_yaml_stream", func(_ *starlark.Thread, b *starlark.Builtin, a starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var l *starlark.List
			if err := starlark.UnpackArgs(b.Name(), a, kw, "objs", &l); err != nil {
				return nil, err
			}
			var out strings.Builder
			for i := 0; i < l.Len(); i++ {
				g, err := toGo(l.Index(i))
				if err != nil {
					return nil, err
				}
				y, err := yaml.Marshal(g)
				if err != nil {
					return nil, err
				}
				out.WriteString("---\n")
				out.Write(y)
			}
			return blob(out.String()), nil
		}),
		"k8s_yaml": starlark.NewBuiltin("k8s_yaml", func(_ *starlark.Thread, b *starlark.Builtin, a starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var v starlark.Value
			var dup bool
			if err := starlark.UnpackArgs(b.Name(), a, kw, "yaml", &v, "allow_duplicates?", &dup); err != nil {
				return nil, err
			}
			var text string
			switch y := v.(type) {
			case blob:
				text = string(y)
			case starlark.String: // a path
				text = readFile(t, string(y))
			default:
				return nil, fmt.Errorf("k8s_yaml: want a blob or a path, got %s", v.Type())
			}
			docs, err := yamlObjects([]byte(text))
			if err != nil {
				return nil, err
			}
			run.objects = append(run.objects, docs...)
			return starlark.None, nil
		}),
	}
	thread := &starlark.Thread{
		Name: "Tiltfile",
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, errors.New("load(): Tilt extensions are fetched from the network; the Tiltfile must not need them")
		},
		Print: func(_ *starlark.Thread, msg string) { t.Logf("Tiltfile: %s", msg) },
	}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}
	if _, err := starlark.ExecFileOptions(opts, thread, "Tiltfile", readFile(t, "Tiltfile"), predeclared); err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			t.Fatalf("Tiltfile: %s", ee.Backtrace())
		}
		t.Fatalf("Tiltfile: %v", err)
	}
	return run
}

func textOf(v starlark.Value) string {
	if s, ok := v.(starlark.String); ok {
		return string(s)
	}
	return v.String()
}

// yamlObjects decodes a YAML stream into generic objects.
func yamlObjects(stream []byte) ([]map[string]any, error) {
	var out []map[string]any
	for _, doc := range splitYAML(stream) {
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, err
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

func toStarlark(v any) starlark.Value {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := starlark.NewDict(len(x))
		for _, k := range keys {
			d.SetKey(starlark.String(k), toStarlark(x[k]))
		}
		return d
	case []any:
		l := make([]starlark.Value, len(x))
		for i, e := range x {
			l[i] = toStarlark(e)
		}
		return starlark.NewList(l)
	case string:
		return starlark.String(x)
	case bool:
		return starlark.Bool(x)
	case float64:
		if x == float64(int64(x)) {
			return starlark.MakeInt64(int64(x))
		}
		return starlark.Float(x)
	case nil:
		return starlark.None
	}
	panic(fmt.Sprintf("toStarlark: %T", v))
}

func toGo(v starlark.Value) (any, error) {
	switch x := v.(type) {
	case *starlark.Dict:
		m := map[string]any{}
		for _, item := range x.Items() {
			k, ok := item[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict key %s is not a string", item[0])
			}
			g, err := toGo(item[1])
			if err != nil {
				return nil, err
			}
			m[string(k)] = g
		}
		return m, nil
	case *starlark.List, starlark.Tuple:
		seq := x.(starlark.Indexable)
		l := make([]any, seq.Len())
		for i := range l {
			g, err := toGo(seq.Index(i))
			if err != nil {
				return nil, err
			}
			l[i] = g
		}
		return l, nil
	case starlark.String:
		return string(x), nil
	case starlark.Bool:
		return bool(x), nil
	case starlark.Int:
		i, ok := x.Int64()
		if !ok {
			return nil, fmt.Errorf("int %s out of range", x)
		}
		return i, nil
	case starlark.Float:
		return float64(x), nil
	case starlark.NoneType:
		return nil, nil
	}
	return nil, fmt.Errorf("cannot encode a %s as YAML", v.Type())
}

// tiltParks are the runs to check: every overlay by --park, and no
// argument at all (the default park).
func tiltRuns(t *testing.T) map[string]*tiltRun {
	runs := map[string]*tiltRun{"(default)": runTiltfile(t, nil)}
	for _, park := range overlays(t) {
		runs[park] = runTiltfile(t, map[string]starlark.Value{"park": starlark.String(park)})
	}
	return runs
}

func TestTiltfile(t *testing.T) {
	for label, run := range tiltRuns(t) {
		t.Run(label, func(t *testing.T) {
			park := strings.Trim(label, "()")
			if park == "default" {
				park = "xian-hitech"
			}
			if want := []string{"k8s/overlays/" + park}; !slices.Equal(run.kustomized, want) {
				t.Errorf("kustomize() rendered %v, want %v", run.kustomized, want)
			}
			checkTiltLocalResources(t, run)
			checkTiltBuilds(t, run)
			checkTiltResources(t, run, park)
			checkTiltObjects(t, run, park)
			for _, l := range run.links {
				if u, err := url.Parse(l); err != nil || (u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1") {
					t.Errorf("link %s: Tilt links must point at this machine (port-forwards)", l)
				}
			}
		})
	}
}

func TestTiltfileRefusesUnknownPark(t *testing.T) {
	// The Tiltfile fails on a park without an overlay, naming it.
	src := readFile(t, "Tiltfile")
	if !strings.Contains(src, "fail(") || !strings.Contains(src, "os.path.exists(overlay") {
		t.Error("the Tiltfile does not check that --park names an overlay")
	}
}

var topLevel = sync1(func(t *testing.T) map[string]bool {
	entries, err := os.ReadDir(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, e := range entries {
		m[e.Name()] = true
	}
	return m
})

// sync1 memoises f for the test run.
func sync1[T any](f func(*testing.T) T) func(*testing.T) T {
	var v T
	done := false
	return func(t *testing.T) T {
		if !done {
			v, done = f(t), true
		}
		return v
	}
}

// generated reports whether p is build output (under .parkmesh/, which git
// ignores), made by a local_resource rather than kept in the repository.
func generated(p string) bool { return strings.HasPrefix(path.Clean(p), ".parkmesh/") }

// checkCommandPaths checks the words of a shell command that name
// repository paths (./x, or starting with a top-level entry such as
// deploy/ or k8s/) and the targets of `make`.
func checkCommandPaths(t *testing.T, where, cmd string) {
	words := shellWords(cmd)
	for i, w := range words {
		if strings.HasPrefix(w, "-") || strings.Contains(w, "://") || generated(w) {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(w, "./"), "/")
		if strings.HasPrefix(w, "./") || (strings.Contains(w, "/") && topLevel(t)[first]) {
			mustExist(t, where, strings.TrimPrefix(w, "./"))
		}
		if w == "make" {
			for _, target := range words[i+1:] {
				if strings.HasPrefix(target, "-") || strings.Contains(target, "=") {
					continue
				}
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).MatchString(readFile(t, "Makefile")) {
					t.Errorf("%s: make target %q is not in the Makefile", where, target)
				}
			}
		}
	}
}

func checkTiltLocalResources(t *testing.T, run *tiltRun) {
	names := map[string]bool{}
	for _, r := range run.localResources {
		where := "local_resource " + r.name
		if names[r.name] {
			t.Errorf("%s defined twice", where)
		}
		names[r.name] = true
		if r.str("cmd") == "" && r.str("serve_cmd") == "" {
			t.Errorf("%s has neither cmd nor serve_cmd", where)
		}
		checkCommandPaths(t, where+" cmd", r.str("cmd"))
		checkCommandPaths(t, where+" serve_cmd", r.str("serve_cmd"))
		for _, d := range r.strs("deps") {
			mustExist(t, where+" deps", d)
		}
		if len(r.strs("labels")) == 0 {
			t.Errorf("%s has no label", where)
		}
	}
}

// compiled returns what the local_resources compile: the -o outputs of
// their go build commands.
func compiled(run *tiltRun) map[string]string {
	out := map[string]string{} // output → local_resource
	for _, r := range run.localResources {
		words := shellWords(r.str("cmd"))
		for i := 0; i+1 < len(words); i++ {
			if words[i] == "-o" {
				out[path.Clean(words[i+1])] = r.name
			}
		}
	}
	return out
}

// stageClosure returns target and every stage it is built from or copies
// from.
func stageClosure(df *dockerfile, target *stage) []*stage {
	var out []*stage
	var visit func(*stage)
	visit = func(s *stage) {
		if s == nil || slices.Contains(out, s) {
			return
		}
		out = append(out, s)
		visit(s.parent)
		for _, in := range s.instrs {
			if in.cmd == "COPY" && in.flags["from"] != "" {
				visit(df.stage(in.flags["from"]))
			}
		}
	}
	visit(target)
	return out
}

func checkTiltBuilds(t *testing.T, run *tiltRun) {
	out := compiled(run)
	refs := map[string]bool{}
	for _, b := range run.dockerBuilds {
		where := "docker_build " + b.name
		if refs[b.name] {
			t.Errorf("%s twice", where)
		}
		refs[b.name] = true
		checkOwnImage(t, where, b.name+":dev")
		context := b.str("context")
		dockerfilePath := b.str("dockerfile")
		if dockerfilePath == "" {
			dockerfilePath = path.Join(context, "Dockerfile")
		}
		if mustExist(t, where+" dockerfile", dockerfilePath) == nil {
			continue
		}
		df := parseDockerfile(t, dockerfilePath)
		target := df.stages[len(df.stages)-1]
		if tg := b.str("target"); tg != "" {
			if target = df.stage(tg); target == nil {
				t.Errorf("%s: target %q is no stage of %s", where, tg, dockerfilePath)
				continue
			}
		}
		// Build args must be ARGs of the Dockerfile.
		if ba, ok := b.kw["build_args"].(*starlark.Dict); ok {
			vars := target.vars(df.globalArgs)
			for _, k := range ba.Keys() {
				if _, declared := vars[string(k.(starlark.String))]; !declared {
					t.Errorf("%s: build arg %s is no ARG of %s", where, k, dockerfilePath)
				}
			}
		}
		// The context holds what the Dockerfile copies: `only` entries
		// exist (or are compiled by a local_resource), and cover every
		// COPY source of the stages the target needs.
		only := b.strs("only")
		for _, o := range only {
			p := path.Join(context, o)
			if generated(p) {
				if _, ok := out[p]; !ok {
					t.Errorf("%s: context file %s is compiled by no local_resource", where, p)
				}
				continue
			}
			mustExist(t, where+" only", p)
		}
		if !generated(context) {
			mustExist(t, where+" context", context)
		}
		for _, st := range stageClosure(df, target) {
			vars := st.vars(df.globalArgs)
			for _, in := range st.instrs {
				if in.cmd != "COPY" || in.flags["from"] != "" {
					continue
				}
				f := strings.Fields(substitute(in.args, vars))
				for _, src := range f[:len(f)-1] {
					src = path.Clean(src)
					covered := len(only) == 0
					for _, o := range only {
						o = path.Clean(o)
						if src == o || strings.HasPrefix(src, o+"/") || o == "." {
							covered = true
						}
					}
					if !covered {
						t.Errorf("%s: %s copies %s, which only=%v leaves out of the context", where, dockerfilePath, src, only)
					}
				}
			}
		}
		// Live update syncs a compiled binary onto the file the image runs.
		if lu, ok := b.kw["live_update"].(*starlark.List); ok {
			for i := 0; i < lu.Len(); i++ {
				s, ok := lu.Index(i).(*starlarkstruct.Struct)
				if !ok {
					t.Errorf("%s: live_update step %d is not a sync()", where, i)
					continue
				}
				local, _ := s.Attr("local_path")
				remote, _ := s.Attr("remote_path")
				lp, rp := string(local.(starlark.String)), string(remote.(starlark.String))
				if _, ok := out[path.Clean(lp)]; !ok {
					t.Errorf("%s: syncs %s, which no local_resource compiles", where, lp)
				}
				if !strings.HasPrefix(path.Clean(lp), path.Clean(context)+"/") {
					t.Errorf("%s: syncs %s from outside its context %s", where, lp, context)
				}
				if !slices.Contains(target.files(), rp) {
					t.Errorf("%s: syncs onto %s, which is not a file of the image", where, rp)
				}
			}
		}
	}
}

// workloadsOf returns the Deployments and StatefulSets among objects.
func workloadsOf(objects []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, o := range objects {
		if k := o["kind"]; k == "Deployment" || k == "StatefulSet" {
			out[dig(o, "metadata", "name").(string)] = o
		}
	}
	return out
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func containersOf(w map[string]any) []map[string]any {
	var out []map[string]any
	list, _ := dig(w, "spec", "template", "spec", "containers").([]any)
	for _, c := range list {
		out = append(out, c.(map[string]any))
	}
	return out
}

func checkTiltResources(t *testing.T, run *tiltRun, park string) {
	workloads := workloadsOf(run.objects)
	known := map[string]bool{}
	for _, r := range run.localResources {
		known[r.name] = true
	}
	for name := range workloads {
		known[name] = true
	}
	localPorts := map[string]string{}
	seen := map[string]bool{}
	for _, r := range run.k8sResources {
		where := "k8s_resource " + r.name
		if seen[r.name] {
			t.Errorf("%s configured twice", where)
		}
		seen[r.name] = true
		w, ok := workloads[r.name]
		if !ok {
			t.Errorf("%s: no workload of that name in the overlay", where)
			continue
		}
		if !slices.Contains(r.strs("labels"), park) {
			t.Errorf("%s is not labelled with its park %s", where, park)
		}
		for _, d := range r.strs("resource_deps") {
			if !known[d] {
				t.Errorf("%s depends on unknown resource %s", where, d)
			}
		}
		for _, pf := range r.strs("port_forwards") {
			local, container, ok := strings.Cut(pf, ":")
			if !ok {
				container = local
			}
			if other, dup := localPorts[local]; dup {
				t.Errorf("%s and %s both forward local port %s", where, other, local)
			}
			localPorts[local] = r.name
			found := false
			for _, c := range containersOf(w) {
				ports, _ := c["ports"].([]any)
				for _, p := range ports {
					if n, ok := dig(p, "containerPort").(float64); ok && strconv.Itoa(int(n)) == container {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("%s forwards to port %s, which its containers do not expose", where, container)
			}
		}
	}
	for _, r := range run.localResources {
		for _, d := range r.strs("resource_deps") {
			if !known[d] {
				t.Errorf("local_resource %s depends on unknown resource %s", r.name, d)
			}
		}
	}
	// Every workload is configured (labels, dependencies on its build).
	for name := range workloads {
		if !seen[name] {
			t.Errorf("workload %s has no k8s_resource (no park label, no port-forward)", name)
		}
	}
}

// checkTiltObjects: Tilt deploys exactly the overlay, every image it runs
// is built by a docker_build, and the only change the Tiltfile makes is a
// writable root file system for the live-updated containers.
func checkTiltObjects(t *testing.T, run *tiltRun, park string) {
	rendered, err := yamlObjects(render(t, "k8s/overlays/"+park))
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	built := map[string]bool{}
	for _, b := range run.dockerBuilds {
		built[b.name] = true
		if _, ok := b.kw["live_update"]; ok {
			live[b.name] = true
		}
	}
	used := map[string]bool{}
	for _, w := range workloadsOf(run.objects) {
		for _, c := range containersOf(w) {
			repo, _, _ := imageRef(c["image"].(string))
			used[repo] = true
			if !built[repo] {
				t.Errorf("%s runs %s, which no docker_build builds: the cluster would pull it", dig(w, "metadata", "name"), c["image"])
			}
			sc, _ := c["securityContext"].(map[string]any)
			if live[repo] {
				if sc["readOnlyRootFilesystem"] != false {
					t.Errorf("%s: live update needs a writable root file system in development", c["name"])
				}
				sc["readOnlyRootFilesystem"] = true // undo, to compare with the overlay
			}
		}
	}
	for ref := range built {
		if !used[ref] {
			t.Errorf("docker_build %s builds an image no workload runs", ref)
		}
	}
	a, _ := json.Marshal(rendered)
	b, _ := json.Marshal(run.objects)
	if string(a) != string(b) {
		t.Errorf("the Tiltfile deploys something other than k8s/overlays/%s (beyond the writable root file system for live update)", park)
	}
}
