package configcheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Rendering uses the kustomize built into kubectl, a prerequisite of every
// project machine and CI (README). Its absence fails the tests, in CI and
// anywhere else: a skipped manifest check is a manifest nobody checked.

var (
	renderMu    sync.Mutex
	renderCache = map[string][]byte{}
)

// render returns `kubectl kustomize dir` (dir relative to the repository).
func render(tb testing.TB, dir string) []byte {
	tb.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if out, ok := renderCache[dir]; ok {
		return out
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		ci := ""
		if os.Getenv("CI") == "true" {
			ci = " (CI=true: the CI machine lacks a project prerequisite)"
		}
		tb.Fatalf("kubectl is needed to render the kustomize overlays offline (`kubectl kustomize`) and is not on PATH%s: %v", ci, err)
	}
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Dir = repoRoot(tb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	renderCache[dir] = out
	return out
}

// manifest is one rendered overlay, every object decoded into its type.
type manifest struct {
	namespaces   []*corev1.Namespace
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	policies     []*networkingv1.NetworkPolicy
	objects      []metav1.Object
}

// workload is what the checks need of a StatefulSet or Deployment.
type workload struct {
	kind, name string
	template   *corev1.PodTemplateSpec
}

func (m *manifest) workloads() []workload {
	var ws []workload
	for _, s := range m.statefulSets {
		ws = append(ws, workload{"StatefulSet", s.Name, &s.Spec.Template})
	}
	for _, d := range m.deployments {
		ws = append(ws, workload{"Deployment", d.Name, &d.Spec.Template})
	}
	return ws
}

func (m *manifest) workload(name string) (workload, bool) {
	for _, w := range m.workloads() {
		if w.name == name {
			return w, true
		}
	}
	return workload{}, false
}

// decodeStrict splits a YAML stream and decodes each document strictly
// (unknown or duplicate fields fail) into the k8s.io/api type of its kind.
// A kind the checks do not know fails too: a new kind needs new checks.
func decodeStrict(tb testing.TB, where string, stream []byte) *manifest {
	tb.Helper()
	m := &manifest{}
	for i, doc := range splitYAML(stream) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			tb.Fatalf("%s: document %d: %v", where, i, err)
		}
		var obj metav1.Object
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/Namespace":
			obj = &corev1.Namespace{}
		case "v1/ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "v1/ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "apps/v1/StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "apps/v1/Deployment":
			obj = &appsv1.Deployment{}
		case "policy/v1/PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "networking.k8s.io/v1/NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		default:
			tb.Fatalf("%s: document %d is a %s %s, which these checks do not know", where, i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			tb.Fatalf("%s: document %d (%s): strict decoding: %v", where, i, tm.Kind, err)
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespaces = append(m.namespaces, o)
		case *corev1.ConfigMap:
			m.configMaps = append(m.configMaps, o)
		case *corev1.Service:
			m.services = append(m.services, o)
		case *appsv1.StatefulSet:
			m.statefulSets = append(m.statefulSets, o)
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, o)
		case *networkingv1.NetworkPolicy:
			m.policies = append(m.policies, o)
		}
		m.objects = append(m.objects, obj)
	}
	return m
}

func splitYAML(stream []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), stream...), []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	// The strictness every check below relies on: a misspelt field fails.
	doc := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  typo: ClusterIP\n")
	if err := yaml.UnmarshalStrict(doc, &corev1.Service{}); err == nil {
		t.Fatal("UnmarshalStrict accepted spec.typo")
	}
}

func TestEveryDemoParkHasAnOverlay(t *testing.T) {
	have := overlays(t)
	for _, p := range demoParks {
		if !slices.Contains(have, p) {
			t.Errorf("no overlay k8s/overlays/%s for demo park %s", p, p)
		}
	}
}

func TestOverlays(t *testing.T) {
	for _, park := range overlays(t) {
		t.Run(park, func(t *testing.T) {
			dir := "k8s/overlays/" + park
			m := decodeStrict(t, dir, render(t, dir))
			checkNamespace(t, m, park)
			checkConfig(t, m, park)
			checkWorkloads(t, m)
			checkGateway(t, m)
			checkServices(t, m)
			checkNetworkPolicies(t, m)
		})
	}
}

func checkNamespace(t *testing.T, m *manifest, park string) {
	want := "parkmesh-" + park
	if len(m.namespaces) != 1 || m.namespaces[0].Name != want {
		t.Fatalf("want exactly one Namespace %s, got %d", want, len(m.namespaces))
	}
	if got := m.namespaces[0].Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace %s enforces pod security %q, want restricted", want, got)
	}
	for _, o := range m.objects {
		if _, isNS := o.(*corev1.Namespace); !isNS && o.GetNamespace() != want {
			t.Errorf("%T %s is in namespace %q, want %s", o, o.GetName(), o.GetNamespace(), want)
		}
	}
}

// checkConfig: the park's ConfigMap names the overlay's park and a public
// URL peers can use.
func checkConfig(t *testing.T, m *manifest, park string) {
	var data map[string]string
	for _, c := range m.configMaps {
		if strings.HasPrefix(c.Name, "parkmesh-config-") {
			if data != nil {
				t.Fatal("two parkmesh-config ConfigMaps")
			}
			data = c.Data
		}
	}
	if data == nil {
		t.Fatal("no parkmesh-config-<hash> ConfigMap")
	}
	if !parkID.MatchString(park) || data["PARKMESH_PARK"] != park {
		t.Errorf("PARKMESH_PARK = %q, want the overlay's park %q (a park id)", data["PARKMESH_PARK"], park)
	}
	// Peer URLs are origins (DESIGN, Trust), over https in a cluster.
	u := data["PARKMESH_PUBLIC_URL"]
	if rest, ok := strings.CutPrefix(u, "https://"); !ok || rest == "" || strings.ContainsAny(rest, "/?#") {
		t.Errorf("PARKMESH_PUBLIC_URL = %q: want the https origin peers reach the federation port at", u)
	}
}

func checkWorkloads(t *testing.T, m *manifest) {
	for _, name := range []string{"directory", "project", "talent", "gateway"} {
		if _, ok := m.workload(name); !ok {
			t.Errorf("no workload %s", name)
		}
	}
	for _, w := range m.workloads() {
		where := w.kind + " " + w.name
		spec := &w.template.Spec
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: mounts a Kubernetes API token it never uses", where)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Errorf("%s: shares a host namespace", where)
		}
		for _, v := range spec.Volumes {
			if v.HostPath != nil {
				t.Errorf("%s: hostPath volume %s", where, v.Name)
			}
		}
		checkPodSecurity(t, where, spec.SecurityContext)
		if len(spec.InitContainers) > 0 {
			t.Errorf("%s: init containers are not checked here; add checks before adding them", where)
		}
		for i := range spec.Containers {
			c := &spec.Containers[i]
			cw := where + " container " + c.Name
			checkOwnImage(t, cw, c.Image)
			checkContainerSecurity(t, cw, c.SecurityContext, spec.SecurityContext)
			checkResources(t, cw, c.Resources)
			checkProbes(t, cw, c)
			if port, ok := servicePorts[w.name]; ok {
				checkListen(t, cw, c, "PARKMESH_LISTEN", "http", port)
				checkProbePort(t, cw, c, port)
			}
		}
	}
}

func checkPodSecurity(t *testing.T, where string, sc *corev1.PodSecurityContext) {
	if sc == nil {
		t.Errorf("%s: no pod securityContext", where)
		return
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", where)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: pod runs as uid %v; want a fixed non-zero uid (the images' 65532)", where, sc.RunAsUser)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile is not RuntimeDefault (Pod Security restricted requires it)", where)
	}
}

func checkContainerSecurity(t *testing.T, where string, sc *corev1.SecurityContext, pod *corev1.PodSecurityContext) {
	if sc == nil {
		t.Errorf("%s: no securityContext", where)
		return
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", where)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", where)
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil && pod != nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot || (sc.RunAsUser != nil && *sc.RunAsUser == 0) {
		t.Errorf("%s: may run as root", where)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities %v; want drop ALL, add none", where, sc.Capabilities)
	}
}

func checkResources(t *testing.T, where string, r corev1.ResourceRequirements) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		switch {
		case !hasReq || !hasLim:
			t.Errorf("%s: %s request and limit must both be set", where, name)
		case req.Sign() <= 0:
			t.Errorf("%s: %s request %s is not positive", where, name, req.String())
		case req.Cmp(lim) > 0:
			t.Errorf("%s: %s request %s exceeds its limit %s", where, name, req.String(), lim.String())
		}
	}
}

// containerPort resolves a probe, Service or policy port (name or number)
// to one of the container's ports; ok is false when it names none.
func containerPort(c *corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// checkProbes: liveness and readiness are HTTP GETs on a port of the
// container; ParkMesh's own processes answer /healthz and /readyz.
func checkProbes(t *testing.T, where string, c *corev1.Container) {
	ours := strings.HasPrefix(c.Image, "parkmesh/") && !strings.HasPrefix(c.Image, "parkmesh/jaeger")
	for kind, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no %s probe (HTTP GET)", where, kind)
			continue
		}
		if _, ok := containerPort(c, p.HTTPGet.Port); !ok {
			t.Errorf("%s: %s probe port %s is none of the container's ports", where, kind, p.HTTPGet.Port.String())
		}
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[kind]
		if ours && p.HTTPGet.Path != want {
			t.Errorf("%s: %s probe on %s, want %s", where, kind, p.HTTPGet.Path, want)
		}
	}
}

// checkProbePort: every probe of c hits containerPort port (where the
// process serves health).
func checkProbePort(t *testing.T, where string, c *corev1.Container, port int) {
	for kind, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			continue
		}
		if cp, ok := containerPort(c, p.HTTPGet.Port); ok && int(cp.ContainerPort) != port {
			t.Errorf("%s: %s probe on port %d, want %d (where health is served)", where, kind, cp.ContainerPort, port)
		}
	}
}

func envOf(c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// checkListen: the process listens on all interfaces at port (variable
// env), and the container declares that port under name.
func checkListen(t *testing.T, where string, c *corev1.Container, env, name string, port int) {
	if got, want := envOf(c)[env], "0.0.0.0:"+strconv.Itoa(port); got != want {
		t.Errorf("%s: %s = %q, want %q", where, env, got, want)
	}
	if cp, ok := containerPort(c, intstr.FromString(name)); !ok || int(cp.ContainerPort) != port {
		t.Errorf("%s: no container port %s = %d", where, name, port)
	}
}

// checkGateway: two listeners, probes on the park side, the park key
// mounted read-only from its Secret.
func checkGateway(t *testing.T, m *manifest) {
	w, ok := m.workload("gateway")
	if !ok {
		return // reported by checkWorkloads
	}
	if len(w.template.Spec.Containers) != 1 {
		t.Fatalf("gateway pod has %d containers, want 1", len(w.template.Spec.Containers))
	}
	c := &w.template.Spec.Containers[0]
	where := "gateway container " + c.Name
	checkListen(t, where, c, "PARKMESH_LISTEN", "park", gatewayParkPort)
	checkListen(t, where, c, "PARKMESH_FEDERATION_LISTEN", "federation", gatewayFederationPort)
	if got := envOf(c)["PARKMESH_METRICS_LISTEN"]; got != "" {
		t.Errorf("%s: PARKMESH_METRICS_LISTEN = %q: the checks expect metrics and health on the park port", where, got)
	}
	checkProbePort(t, where, c, gatewayParkPort)
	if c.StartupProbe == nil {
		t.Errorf("%s: no startup probe (the gateway reads its logs before it is ready)", where)
	}

	keys := path.Join(envOf(c)["PARKMESH_DATA_DIR"], "keys")
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != keys {
			continue
		}
		if !vm.ReadOnly {
			t.Errorf("%s: the park key is mounted writable", where)
		}
		for _, v := range w.template.Spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			if v.Secret == nil || v.Secret.SecretName != "parkmesh-park-key" {
				t.Errorf("%s: %s is not the Secret parkmesh-park-key", where, keys)
			} else if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0 {
				t.Errorf("%s: park key files are readable by others (defaultMode %v)", where, v.Secret.DefaultMode)
			}
		}
		return
	}
	t.Errorf("%s: no park key Secret mounted at %s", where, keys)
}

// checkServices: exactly one Service is reachable from outside the
// cluster, and it exposes the gateway's federation port and nothing else;
// the park side has an internal Service; every Service port targets a
// port of the workload it selects.
func checkServices(t *testing.T, m *manifest) {
	exposed, parkSide := 0, false
	for _, s := range m.services {
		where := "Service " + s.Name
		var selected []workload
		for _, w := range m.workloads() {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.template.Labels)) {
				selected = append(selected, w)
			}
		}
		if len(selected) != 1 {
			t.Errorf("%s selects %d workloads, want 1", where, len(selected))
			continue
		}
		w := selected[0]
		var targets []int32
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			cp, ok := containerPort(&w.template.Spec.Containers[0], target)
			if !ok {
				t.Errorf("%s port %s targets %s, which %s does not expose", where, p.Name, target.String(), w.name)
				continue
			}
			targets = append(targets, cp.ContainerPort)
		}
		outside := len(s.Spec.ExternalIPs) > 0
		switch s.Spec.Type {
		case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
			outside = true
		case corev1.ServiceTypeClusterIP, "":
		default:
			t.Errorf("%s has type %s", where, s.Spec.Type)
		}
		if outside {
			exposed++
			if w.name != "gateway" || !slices.Equal(targets, []int32{gatewayFederationPort}) {
				t.Errorf("%s is reachable from outside and exposes %s ports %v; only the gateway's federation port (%d) may be", where, w.name, targets, gatewayFederationPort)
			}
		} else if w.name == "gateway" && slices.Contains(targets, gatewayParkPort) {
			parkSide = true
		}
	}
	if exposed != 1 {
		t.Errorf("%d Services are reachable from outside the cluster, want exactly the gateway's federation Service", exposed)
	}
	if !parkSide {
		t.Errorf("no ClusterIP Service for the gateway's park port %d (staff, portal, metrics)", gatewayParkPort)
	}
}

// Namespaces admitted into the park besides peers, and on which ports: the
// Consul agents (health checks) and Prometheus (metrics) on the ports
// health and metrics are served on, and the park's staff entrance on the
// gateway's park port.
var admittedNamespaces = []struct {
	key, value  string
	ports       []string // container port names
	gatewayOnly bool
}{
	{"kubernetes.io/metadata.name", "consul", []string{"http", "park"}, false},
	{"kubernetes.io/metadata.name", "monitoring", []string{"http", "park"}, false},
	{"parkmesh/staff-access", "true", []string{"park"}, true},
}

// checkNetworkPolicies: ingress is denied by default; from outside the
// namespace only the gateway's federation port is open to anyone; other
// namespaces are admitted only as admittedNamespaces says.
func checkNetworkPolicies(t *testing.T, m *manifest) {
	selects := func(sel metav1.LabelSelector) []workload {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			t.Fatal(err)
		}
		var ws []workload
		for _, w := range m.workloads() {
			if s.Matches(labels.Set(w.template.Labels)) {
				ws = append(ws, w)
			}
		}
		return ws
	}
	// portNames resolves a rule's ports to container port names on every
	// target; no ports means every port.
	portNames := func(targets []workload, ports []networkingv1.NetworkPolicyPort) []string {
		if len(ports) == 0 {
			return []string{"*"}
		}
		var names []string
		for _, p := range ports {
			if p.Port == nil || p.EndPort != nil {
				names = append(names, "*")
				continue
			}
			for _, w := range targets {
				for i := range w.template.Spec.Containers {
					if cp, ok := containerPort(&w.template.Spec.Containers[i], *p.Port); ok && !slices.Contains(names, cp.Name) {
						names = append(names, cp.Name)
					}
				}
			}
		}
		slices.Sort(names)
		return names
	}
	isGateway := func(ws []workload) bool { return len(ws) == 1 && ws[0].name == "gateway" }

	denyAll, federationOpen := false, false
	for _, p := range m.policies {
		where := "NetworkPolicy " + p.Name
		if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("%s does not govern ingress", where)
		}
		targets := selects(p.Spec.PodSelector)
		if len(p.Spec.PodSelector.MatchLabels)+len(p.Spec.PodSelector.MatchExpressions) == 0 && len(p.Spec.Ingress) == 0 {
			denyAll = true
		}
		for i, rule := range p.Spec.Ingress {
			rw := fmt.Sprintf("%s rule %d", where, i)
			ports := portNames(targets, rule.Ports)
			anywhere := len(rule.From) == 0
			for _, peer := range rule.From {
				switch {
				case peer.IPBlock != nil:
					anywhere = true
				case peer.NamespaceSelector != nil:
					ns := peer.NamespaceSelector
					ok := false
					for _, a := range admittedNamespaces {
						if len(ns.MatchExpressions) == 0 && len(ns.MatchLabels) == 1 && ns.MatchLabels[a.key] == a.value {
							ok = len(ports) > 0 && !slices.Contains(ports, "*") && !slices.ContainsFunc(ports, func(n string) bool { return !slices.Contains(a.ports, n) })
							ok = ok && (!a.gatewayOnly || isGateway(targets))
						}
					}
					if !ok {
						t.Errorf("%s admits namespaces %v on ports %v; allowed are only %+v", rw, ns.MatchLabels, ports, admittedNamespaces)
					}
				case peer.PodSelector != nil:
					// Pods of the park's own namespace.
				}
			}
			if anywhere {
				if !isGateway(targets) || !slices.Equal(ports, []string{"federation"}) {
					t.Errorf("%s admits anyone to ports %v of %d workload(s); from outside only the gateway's federation port may be open", rw, ports, len(targets))
				} else {
					federationOpen = true
				}
			}
		}
	}
	if !denyAll {
		t.Error("no NetworkPolicy denies ingress by default (empty podSelector, no rules)")
	}
	if !federationOpen {
		t.Error("no NetworkPolicy lets peers reach the gateway's federation port")
	}
}

func TestConsulValues(t *testing.T) {
	var v struct {
		Global struct{ Name, Image string }
		Client struct{ Enabled bool }
		UI     struct {
			Enabled bool
			Service struct{ Type string }
		}
	}
	// Helm values are open-ended: decode leniently, check what matters.
	if err := yaml.Unmarshal([]byte(readFile(t, "k8s/consul/values.yaml")), &v); err != nil {
		t.Fatal(err)
	}
	if want := "hashicorp/consul:" + scriptDefault(t, "deploy/tools/install-consul.sh", "CONSUL_VERSION"); v.Global.Image != want {
		t.Errorf("global.image = %q, want %q: the Consul the project is tested with", v.Global.Image, want)
	}
	if v.Global.Name != "consul" {
		t.Errorf("global.name = %q, want consul (the NetworkPolicy admits namespace consul; the Tiltfile forwards service/consul-ui)", v.Global.Name)
	}
	if !v.Client.Enabled {
		t.Error("client.enabled is false: the pods' CONSUL_HTTP_ADDR=$(HOST_IP):8500 needs the client agents")
	}
	if v.UI.Service.Type != "ClusterIP" {
		t.Errorf("ui.service.type = %q, want ClusterIP (never public)", v.UI.Service.Type)
	}
}
