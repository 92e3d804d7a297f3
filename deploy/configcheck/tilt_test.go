package configcheck

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Tilt cannot run here (no cluster, and it does not install offline), so
// the Tiltfile runs in a Starlark interpreter with Tilt's dialect options,
// where Tilt's functions are stand-ins that record their arguments;
// kustomize() really renders the overlay. The checks then look at what the
// Tiltfile asked for.

// tiltCall is one recorded call of a Tilt function.
type tiltCall struct {
	fn   string
	name string // the first argument: resource, image or workload
	kw   map[string]starlark.Value
}

func (c tiltCall) str(k string) string {
	s, _ := c.kw[k].(starlark.String)
	return string(s)
}

func (c tiltCall) strs(k string) []string {
	var out []string
	if seq, ok := c.kw[k].(starlark.Indexable); ok {
		for i := range seq.Len() {
			if s, ok := seq.Index(i).(starlark.String); ok {
				out = append(out, string(s))
			}
		}
	}
	return out
}

// positional are the leading parameters of Tilt's functions, in order
// (Tilt's API reference), for calls that pass them without keywords.
var positional = map[string][]string{
	"local_resource":       {"name", "cmd", "deps"},
	"docker_build":         {"ref", "context"},
	"k8s_resource":         {"workload"},
	"sync":                 {"local_path", "remote_path"},
	"link":                 {"url", "name"},
	"config.define_string": {"name", "args", "usage"},
	"config.define_bool":   {"name", "args", "usage"},
}

// tiltRun is what one execution of the Tiltfile asked for.
type tiltRun struct {
	calls      []tiltCall
	kustomized []string
	objects    int // objects handed to k8s_yaml
}

func (r *tiltRun) all(fn string) []tiltCall {
	var out []tiltCall
	for _, c := range r.calls {
		if c.fn == fn {
			out = append(out, c)
		}
	}
	return out
}

func (r *tiltRun) find(fn, name string) (tiltCall, bool) {
	for _, c := range r.all(fn) {
		if c.name == name {
			return c, true
		}
	}
	return tiltCall{}, false
}

// runTiltfile executes the Tiltfile as `tilt up -- --park park` would
// (park "" for no argument).
func runTiltfile(t *testing.T, park string) *tiltRun {
	t.Helper()
	run, err := execTiltfile(t, park)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func execTiltfile(t *testing.T, park string) (*tiltRun, error) {
	t.Helper()
	run := &tiltRun{}
	recorder := func(fn string) *starlark.Builtin {
		return starlark.NewBuiltin(fn, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			c := tiltCall{fn: fn, kw: map[string]starlark.Value{}}
			if len(args) > len(positional[fn]) {
				return nil, fmt.Errorf("%s: %d positional arguments, Tilt takes %d", fn, len(args), len(positional[fn]))
			}
			for i, a := range args {
				c.kw[positional[fn][i]] = a
			}
			for _, kv := range kwargs {
				k := string(kv[0].(starlark.String))
				if _, dup := c.kw[k]; dup {
					return nil, fmt.Errorf("%s: %s given twice", fn, k)
				}
				c.kw[k] = kv[1]
			}
			if len(positional[fn]) > 0 {
				c.name = c.str(positional[fn][0])
			}
			run.calls = append(run.calls, c)
			d := starlark.StringDict{}
			for k, v := range c.kw {
				d[k] = v
			}
			return starlarkstruct.FromStringDict(starlark.String(fn), d), nil
		})
	}
	builtin := func(name string, f func(args starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("%s: no argument", name)
			}
			return f(args)
		})
	}
	cfg := starlark.NewDict(1)
	if park != "" {
		cfg.SetKey(starlark.String("park"), starlark.String(park))
	}
	config := &starlarkstruct.Module{Name: "config", Members: starlark.StringDict{
		"define_string": recorder("config.define_string"),
		"define_bool":   recorder("config.define_bool"),
		"parse": starlark.NewBuiltin("config.parse", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return cfg, nil
		}),
	}}
	predeclared := starlark.StringDict{
		"config": config,
		"os": &starlarkstruct.Module{Name: "os", Members: starlark.StringDict{
			"path": &starlarkstruct.Module{Name: "os.path", Members: starlark.StringDict{
				"exists": builtin("os.path.exists", func(a starlark.Tuple) (starlark.Value, error) {
					s, _ := starlark.AsString(a[0])
					_, err := os.Stat(repoPath(t, s))
					return starlark.Bool(err == nil), nil
				}),
			}},
		}},
		"fail": builtin("fail", func(a starlark.Tuple) (starlark.Value, error) {
			return nil, errors.New(a[0].String())
		}),
		"TRIGGER_MODE_AUTO":   starlark.String("auto"),
		"TRIGGER_MODE_MANUAL": starlark.String("manual"),
		"local_resource":      recorder("local_resource"),
		"docker_build":        recorder("docker_build"),
		"k8s_resource":        recorder("k8s_resource"),
		"sync":                recorder("sync"),
		"link":                recorder("link"),
		"kustomize": builtin("kustomize", func(a starlark.Tuple) (starlark.Value, error) {
			dir, _ := starlark.AsString(a[0])
			run.kustomized = append(run.kustomized, dir)
			return starlark.String(render(t, dir)), nil
		}),
		"decode_yaml_stream": builtin("decode_yaml_stream", func(a starlark.Tuple) (starlark.Value, error) {
			s, _ := starlark.AsString(a[0])
			var list []starlark.Value
			for _, doc := range splitYAML([]byte(s)) {
				var m map[string]any
				if err := yaml.Unmarshal(doc, &m); err != nil {
					return nil, err
				}
				list = append(list, toStarlark(m))
			}
			return starlark.NewList(list), nil
		}),
		"encode_yaml_stream": builtin("encode_yaml_stream", func(a starlark.Tuple) (starlark.Value, error) {
			l, ok := a[0].(*starlark.List)
			if !ok {
				return nil, fmt.Errorf("encode_yaml_stream: want a list, got %s", a[0].Type())
			}
			var out strings.Builder
			for i := range l.Len() {
				y, err := yaml.Marshal(toGo(l.Index(i)))
				if err != nil {
					return nil, err
				}
				out.WriteString("---\n")
				out.Write(y)
			}
			return starlark.String(out.String()), nil
		}),
		"k8s_yaml": builtin("k8s_yaml", func(a starlark.Tuple) (starlark.Value, error) {
			s, _ := starlark.AsString(a[0])
			run.objects += len(splitYAML([]byte(s)))
			return starlark.None, nil
		}),
	}
	thread := &starlark.Thread{
		Name: "Tiltfile",
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, errors.New("load(): Tilt extensions come from the network; the Tiltfile must not need them")
		},
		Print: func(_ *starlark.Thread, msg string) { t.Logf("Tiltfile: %s", msg) },
	}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}
	if _, err := starlark.ExecFileOptions(opts, thread, "Tiltfile", readFile(t, "Tiltfile"), predeclared); err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("Tiltfile: %s", ee.Backtrace())
		}
		return nil, fmt.Errorf("Tiltfile: %v", err)
	}
	return run, nil
}

func toStarlark(v any) starlark.Value {
	switch x := v.(type) {
	case map[string]any:
		d := starlark.NewDict(len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
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
	}
	return starlark.None
}

func toGo(v starlark.Value) any {
	switch x := v.(type) {
	case *starlark.Dict:
		m := map[string]any{}
		for _, item := range x.Items() {
			k, _ := starlark.AsString(item[0])
			m[k] = toGo(item[1])
		}
		return m
	case *starlark.List:
		l := make([]any, x.Len())
		for i := range l {
			l[i] = toGo(x.Index(i))
		}
		return l
	case starlark.String:
		return string(x)
	case starlark.Bool:
		return bool(x)
	case starlark.Int:
		i, _ := x.Int64()
		return i
	case starlark.Float:
		return float64(x)
	}
	return nil
}

// tiltWorkloads are the overlay's workloads, each a Tilt resource.
var tiltWorkloads = []string{"directory", "project", "talent", "gateway", "jaeger"}

func TestTiltfile(t *testing.T) {
	makefile := readFile(t, "Makefile")
	for _, arg := range append([]string{""}, overlays(t)...) {
		label, park := arg, arg
		if arg == "" {
			label, park = "default", "xian-hitech"
		}
		t.Run(label, func(t *testing.T) {
			run := runTiltfile(t, arg)
			overlay := "k8s/overlays/" + park
			if !slices.Equal(run.kustomized, []string{overlay}) {
				t.Errorf("kustomize() rendered %v, want [%s]", run.kustomized, overlay)
			}
			m := decodeStrict(t, overlay, render(t, overlay))
			if run.objects != len(m.objects) {
				t.Errorf("k8s_yaml got %d objects, the overlay has %d", run.objects, len(m.objects))
			}

			for _, name := range []string{"compile-devrun", "compile-directory", "compile-project", "compile-talent", "compile-gateway", "park-key", "sample-data", "consul-ui", "make-test"} {
				if _, ok := run.find("local_resource", name); !ok {
					t.Errorf("no local_resource %s", name)
				}
			}
			for _, r := range run.all("local_resource") {
				for _, d := range r.strs("deps") {
					mustExist(t, "local_resource "+r.name+" deps", d)
				}
				if target, ok := strings.CutPrefix(r.str("cmd"), "make "); ok && !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(target)+`:`).MatchString(makefile) {
					t.Errorf("local_resource %s runs make %s, which the Makefile lacks", r.name, target)
				}
			}
			// The sample data goes in through the park side.
			if r, _ := run.find("local_resource", "sample-data"); !strings.Contains(r.str("cmd"), "-gateway http://127.0.0.1:"+strconv.Itoa(gatewayParkPort)) {
				t.Errorf("sample-data does not load through the forwarded park port %d: %q", gatewayParkPort, r.str("cmd"))
			}

			for _, name := range []string{"directory", "project", "talent", "gateway", "jaeger"} {
				b, ok := run.find("docker_build", "parkmesh/"+name)
				if !ok {
					t.Errorf("no docker_build parkmesh/%s", name)
					continue
				}
				mustExist(t, "docker_build parkmesh/"+name+" dockerfile", b.str("dockerfile"))
				if tg := b.str("target"); tg != "" && len(readDockerfile(t, b.str("dockerfile")).chain(tg)) == 0 {
					t.Errorf("docker_build parkmesh/%s: target %s is no stage of %s", name, tg, b.str("dockerfile"))
				}
			}

			for _, name := range tiltWorkloads {
				r, ok := run.find("k8s_resource", name)
				if !ok {
					t.Errorf("no k8s_resource %s", name)
					continue
				}
				if !slices.Contains(r.strs("labels"), park) {
					t.Errorf("k8s_resource %s is not labelled with its park %s", name, park)
				}
				w, _ := m.workload(name)
				for _, pf := range r.strs("port_forwards") {
					_, container, _ := strings.Cut(pf, ":")
					n, _ := strconv.Atoi(container)
					if w.template == nil || !slices.ContainsFunc(w.template.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == n }) {
						t.Errorf("k8s_resource %s forwards %s to a port its container does not have", name, pf)
					}
				}
			}
			gw, _ := run.find("k8s_resource", "gateway")
			for _, want := range []int{gatewayParkPort, gatewayFederationPort} {
				pf := strconv.Itoa(want) + ":" + strconv.Itoa(want)
				if !slices.Contains(gw.strs("port_forwards"), pf) {
					t.Errorf("k8s_resource gateway does not forward %s (both listeners)", pf)
				}
			}
		})
	}
}

func TestTiltfileRefusesUnknownPark(t *testing.T) {
	_, err := execTiltfile(t, "atlantis-hitech")
	if err == nil || !strings.Contains(err.Error(), "atlantis-hitech") {
		t.Errorf("tilt up -- --park atlantis-hitech (no overlay): %v; want a failure naming the park", err)
	}
}
