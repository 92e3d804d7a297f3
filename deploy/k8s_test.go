package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/parkmesh/parkmesh/pkg/listing"
)

// Rendering uses the kustomize built into kubectl, which every machine of
// the project has (shared NOTES-ENV). Its absence fails the tests: a
// skipped manifest check is a manifest nobody checked. (The kustomize Go
// API would avoid the binary but pulls in kyaml, kube-openapi and more.)

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
		tb.Fatalf("kubectl is needed to render the kustomize overlays (`kubectl kustomize`) and is not on PATH: %v", err)
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
	accounts     []*corev1.ServiceAccount
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	budgets      []*policyv1.PodDisruptionBudget
	policies     []*networkingv1.NetworkPolicy
	objects      []metav1.Object
}

// workload is what the checks need of a StatefulSet or Deployment.
type workload struct {
	kind, name string
	replicas   int32
	selector   *metav1.LabelSelector
	template   *corev1.PodTemplateSpec
	claims     []corev1.PersistentVolumeClaim
}

func (m *manifest) workloads() []workload {
	var ws []workload
	for _, s := range m.statefulSets {
		ws = append(ws, workload{"StatefulSet", s.Name, replicas(s.Spec.Replicas), s.Spec.Selector, &s.Spec.Template, s.Spec.VolumeClaimTemplates})
	}
	for _, d := range m.deployments {
		ws = append(ws, workload{"Deployment", d.Name, replicas(d.Spec.Replicas), d.Spec.Selector, &d.Spec.Template, nil})
	}
	return ws
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// decodeStrict splits a YAML stream and decodes each document strictly
// (unknown or duplicate fields fail) into the k8s.io/api type of its kind.
// A kind the test does not know fails too: a new kind needs new checks.
func decodeStrict(tb testing.TB, where string, stream []byte) *manifest {
	tb.Helper()
	m := &manifest{}
	for i, doc := range splitYAML(stream) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			tb.Fatalf("%s: document %d: %v", where, i, err)
		}
		var obj any
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
			tb.Fatalf("%s: document %d is a %s %s, which these tests do not check", where, i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			tb.Fatalf("%s: document %d (%s): strict decoding: %v", where, i, tm.Kind, err)
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespaces = append(m.namespaces, o)
		case *corev1.ServiceAccount:
			m.accounts = append(m.accounts, o)
		case *corev1.ConfigMap:
			m.configMaps = append(m.configMaps, o)
		case *corev1.Service:
			m.services = append(m.services, o)
		case *appsv1.StatefulSet:
			m.statefulSets = append(m.statefulSets, o)
		case *appsv1.Deployment:
			m.deployments = append(m.deployments, o)
		case *policyv1.PodDisruptionBudget:
			m.budgets = append(m.budgets, o)
		case *networkingv1.NetworkPolicy:
			m.policies = append(m.policies, o)
		}
		m.objects = append(m.objects, obj.(metav1.Object))
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

func TestDecodeStrictRefusesUnknownFields(t *testing.T) {
	// The strictness the manifest tests rely on: a misspelt field fails.
	doc := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  typo: ClusterIP\n")
	if err := yaml.UnmarshalStrict(doc, &corev1.Service{}); err == nil {
		t.Fatal("UnmarshalStrict accepted spec.typo")
	}
}

// overlays returns every overlay directory, relative to the repository.
func overlays(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir(repoPath(tb, "k8s/overlays"))
	if err != nil {
		tb.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

func TestEveryDemoParkHasAnOverlay(t *testing.T) {
	have := overlays(t)
	for _, p := range demoParks {
		if !slices.Contains(have, p) {
			t.Errorf("no overlay k8s/overlays/%s for demo park %s", p, p)
		}
	}
}

// parkmeshProcesses are the workloads running ParkMesh binaries, with the
// port each listens on.
var parkmeshProcesses = map[string]int{"directory": 7101, "project": 7102, "talent": 7103, "gateway": 8080}

func TestOverlays(t *testing.T) {
	for _, park := range overlays(t) {
		t.Run(park, func(t *testing.T) {
			dir := "k8s/overlays/" + park
			m := decodeStrict(t, dir, render(t, dir))
			checkNamespace(t, m, park)
			cm := checkConfig(t, m, park)
			checkWorkloads(t, m, park, cm)
			checkBudgets(t, m)
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

// checkConfig checks the park's ConfigMap and returns its data.
func checkConfig(t *testing.T, m *manifest, park string) map[string]string {
	var found []*corev1.ConfigMap
	for _, c := range m.configMaps {
		if strings.HasPrefix(c.Name, "parkmesh-config-") {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one parkmesh-config-<hash> ConfigMap, got %d", len(found))
	}
	data := found[0].Data
	if data["PARKMESH_PARK"] != park {
		t.Errorf("PARKMESH_PARK = %q, want the overlay's park %q", data["PARKMESH_PARK"], park)
	}
	if !listing.ValidParkID(park) {
		t.Errorf("overlay name %q is not a park id", park)
	}
	if c := data["PARKMESH_COUNTRY"]; !listing.ValidCountry(c) {
		t.Errorf("PARKMESH_COUNTRY = %q, not an ISO 3166-1 alpha-2 code", c)
	}
	if u := data["PARKMESH_PUBLIC_URL"]; !strings.HasPrefix(u, "https://") {
		t.Errorf("PARKMESH_PUBLIC_URL = %q: peers must reach the gateway over https", u)
	}
	for k := range data {
		if !strings.HasPrefix(k, "PARKMESH_") && !strings.HasPrefix(k, "OTEL_") {
			t.Errorf("ConfigMap key %s is neither a PARKMESH_<FLAG> nor an OTEL_ setting", k)
		}
	}
	return data
}

func checkWorkloads(t *testing.T, m *manifest, park string, config map[string]string) {
	ws := m.workloads()
	names := map[string]workload{}
	for _, w := range ws {
		names[w.name] = w
	}
	for name := range parkmeshProcesses {
		w, ok := names[name]
		switch {
		case !ok:
			t.Errorf("no workload %s", name)
		case w.kind != "StatefulSet" || w.replicas != 1:
			// SQLite has one writer: one replica, its own volume.
			t.Errorf("%s is a %s with %d replicas; SQLite needs a one-replica StatefulSet", name, w.kind, w.replicas)
		}
	}
	accounts := map[string]bool{"": false}
	for _, a := range m.accounts {
		accounts[a.Name] = true
	}
	configMaps := map[string]bool{}
	for _, c := range m.configMaps {
		configMaps[c.Name] = true
	}
	for _, w := range ws {
		where := w.kind + " " + w.name
		tpl := w.template
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(tpl.Labels)) {
			t.Errorf("%s: selector %v does not select its own pods %v", where, w.selector, tpl.Labels)
		}
		if tpl.Labels["parkmesh/park"] != park {
			t.Errorf("%s: pods are not labelled parkmesh/park=%s", where, park)
		}
		spec := &tpl.Spec
		if !accounts[spec.ServiceAccountName] {
			t.Errorf("%s: service account %q is not in the overlay", where, spec.ServiceAccountName)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: mounts a Kubernetes API token it never uses", where)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Errorf("%s: shares a host namespace", where)
		}
		checkPodSecurity(t, where, spec.SecurityContext)
		for _, v := range spec.Volumes {
			if v.HostPath != nil {
				t.Errorf("%s: hostPath volume %s", where, v.Name)
			}
		}
		if len(spec.InitContainers) > 0 {
			t.Errorf("%s: init containers are not checked here; add checks before adding them", where)
		}
		for i := range spec.Containers {
			c := &spec.Containers[i]
			cw := where + " container " + c.Name
			checkOwnImage(t, cw, c.Image)
			checkContainerSecurity(t, cw, c.SecurityContext, spec.SecurityContext)
			checkResources(t, cw, c.Resources)
			checkProbes(t, cw, c, w.name)
			checkTmp(t, cw, c, spec.Volumes)
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil && !configMaps[ef.ConfigMapRef.Name] {
					t.Errorf("%s: envFrom ConfigMap %s is not in the overlay", cw, ef.ConfigMapRef.Name)
				}
			}
			if port, ok := parkmeshProcesses[w.name]; ok {
				checkParkmeshEnv(t, cw, c, port, config)
				checkDataVolume(t, cw, c, w)
			}
			if w.name == "gateway" {
				checkParkKey(t, cw, c, spec.Volumes)
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
	if nonRoot == nil || !*nonRoot {
		t.Errorf("%s: runAsNonRoot is not true", where)
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Errorf("%s: runs as root", where)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities do not drop ALL", where)
	} else if len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: adds capabilities %v", where, sc.Capabilities.Add)
	}
}

func checkResources(t *testing.T, where string, r corev1.ResourceRequirements) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		switch {
		case !hasReq || !hasLim:
			t.Errorf("%s: %s request and limit must both be set (request %v, limit %v)", where, name, qty(req, hasReq), qty(lim, hasLim))
		case req.Sign() <= 0:
			t.Errorf("%s: %s request %s is not positive", where, name, req.String())
		case req.Cmp(lim) > 0:
			t.Errorf("%s: %s request %s exceeds its limit %s", where, name, req.String(), lim.String())
		}
	}
}

func qty(q resource.Quantity, ok bool) string {
	if !ok {
		return "unset"
	}
	return q.String()
}

// containerPort resolves a probe or Service port (name or number) to one
// of the container's ports, or returns 0.
func containerPort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

func checkProbes(t *testing.T, where string, c *corev1.Container, workload string) {
	probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
	want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}
	for kind, p := range probes {
		if p == nil {
			t.Errorf("%s: no %s probe", where, kind)
			continue
		}
		if p.HTTPGet == nil {
			t.Errorf("%s: %s probe is not an HTTP GET", where, kind)
			continue
		}
		if containerPort(c, p.HTTPGet.Port) == 0 {
			t.Errorf("%s: %s probe port %s is none of the container's ports", where, kind, p.HTTPGet.Port.String())
		}
		if _, ours := parkmeshProcesses[workload]; ours && p.HTTPGet.Path != want[kind] {
			t.Errorf("%s: %s probe on %s, want %s", where, kind, p.HTTPGet.Path, want[kind])
		}
	}
	if p := c.StartupProbe; p != nil && (p.HTTPGet == nil || containerPort(c, p.HTTPGet.Port) == 0) {
		t.Errorf("%s: startup probe is not an HTTP GET on one of the container's ports", where)
	}
}

// checkTmp: with a read-only root file system, /tmp (Go's and SQLite's
// temporary files) must be a writable emptyDir.
func checkTmp(t *testing.T, where string, c *corev1.Container, volumes []corev1.Volume) {
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == "/tmp" {
			for _, v := range volumes {
				if v.Name == vm.Name && v.EmptyDir != nil && !vm.ReadOnly {
					return
				}
			}
		}
	}
	t.Errorf("%s: no writable emptyDir at /tmp", where)
}

func envOf(c *corev1.Container) map[string]corev1.EnvVar {
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	return env
}

// checkParkmeshEnv checks the flags a ParkMesh process gets from its
// environment: where it listens, what it registers in Consul and how it
// reaches its agent.
func checkParkmeshEnv(t *testing.T, where string, c *corev1.Container, port int, config map[string]string) {
	env := envOf(c)
	if got, want := env["PARKMESH_LISTEN"].Value, "0.0.0.0:"+strconv.Itoa(port); got != want {
		t.Errorf("%s: PARKMESH_LISTEN = %q, want %q", where, got, want)
	}
	if containerPort(c, intstr.FromInt32(int32(port))) == 0 {
		t.Errorf("%s: port %d is not a container port", where, port)
	}
	fieldRef := func(name, path string) {
		e, ok := env[name]
		if !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != path {
			t.Errorf("%s: %s is not the downward API's %s", where, name, path)
		}
	}
	// Consul must register an address other pods reach: the pod's.
	fieldRef("POD_IP", "status.podIP")
	if got := env["PARKMESH_ADVERTISE"].Value; got != "$(POD_IP)" {
		t.Errorf("%s: PARKMESH_ADVERTISE = %q, want $(POD_IP)", where, got)
	}
	// The agent: the node's client agent, unless the ConfigMap names one.
	if _, ok := config["PARKMESH_CONSUL"]; !ok {
		fieldRef("HOST_IP", "status.hostIP")
		if got := env["CONSUL_HTTP_ADDR"].Value; got != "$(HOST_IP):8500" {
			t.Errorf("%s: CONSUL_HTTP_ADDR = %q, want $(HOST_IP):8500 (the chart's client agent)", where, got)
		}
	}
	// $(VAR) expands only variables defined earlier in the list.
	seen := map[string]bool{}
	for _, e := range c.Env {
		for _, ref := range []string{"POD_IP", "HOST_IP"} {
			if strings.Contains(e.Value, "$("+ref+")") && !seen[ref] {
				t.Errorf("%s: %s uses $(%s) before it is defined", where, e.Name, ref)
			}
		}
		seen[e.Name] = true
	}
}

// checkDataVolume: the process's data directory is the StatefulSet's
// volume claim, so its SQLite file survives the pod.
func checkDataVolume(t *testing.T, where string, c *corev1.Container, w workload) {
	dataDir := envOf(c)["PARKMESH_DATA_DIR"].Value
	if dataDir == "" {
		t.Errorf("%s: no PARKMESH_DATA_DIR", where)
		return
	}
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != dataDir {
			continue
		}
		for _, claim := range w.claims {
			if claim.Name == vm.Name {
				if _, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
					t.Errorf("%s: volume claim %s requests no storage", where, claim.Name)
				}
				return
			}
		}
	}
	t.Errorf("%s: PARKMESH_DATA_DIR %s is not a volume claim of the StatefulSet", where, dataDir)
}

// checkParkKey: the gateway reads the park key from the Secret, read-only,
// in the keys/ folder of its data directory (pkg/parkkey).
func checkParkKey(t *testing.T, where string, c *corev1.Container, volumes []corev1.Volume) {
	want := filepath.ToSlash(filepath.Join(envOf(c)["PARKMESH_DATA_DIR"].Value, "keys"))
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != want {
			continue
		}
		if !vm.ReadOnly {
			t.Errorf("%s: the park key is mounted writable", where)
		}
		for _, v := range volumes {
			if v.Name == vm.Name {
				if v.Secret == nil || v.Secret.SecretName != "parkmesh-park-key" {
					t.Errorf("%s: %s is not the Secret parkmesh-park-key", where, want)
				} else if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0 {
					t.Errorf("%s: park key files are readable by others (defaultMode %v)", where, v.Secret.DefaultMode)
				}
				return
			}
		}
	}
	t.Errorf("%s: no park key Secret mounted at %s", where, want)
}

// checkBudgets: every workload has exactly one PodDisruptionBudget, and
// none forbids every voluntary disruption (that would block node drains).
func checkBudgets(t *testing.T, m *manifest) {
	for _, w := range m.workloads() {
		var matched []*policyv1.PodDisruptionBudget
		for _, b := range m.budgets {
			sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			if err != nil {
				t.Errorf("PodDisruptionBudget %s: %v", b.Name, err)
				continue
			}
			if !sel.Empty() && sel.Matches(labels.Set(w.template.Labels)) {
				matched = append(matched, b)
			}
		}
		if len(matched) != 1 {
			t.Errorf("%s %s is covered by %d PodDisruptionBudgets, want 1", w.kind, w.name, len(matched))
			continue
		}
		b := matched[0]
		allowed, err := disruptionsAllowed(b, w.replicas)
		if err != nil {
			t.Errorf("PodDisruptionBudget %s: %v", b.Name, err)
		} else if allowed < 1 {
			t.Errorf("PodDisruptionBudget %s allows no disruption of %s's %d replica(s): nodes could never drain", b.Name, w.name, w.replicas)
		}
	}
}

func disruptionsAllowed(b *policyv1.PodDisruptionBudget, replicas int32) (int, error) {
	switch {
	case b.Spec.MaxUnavailable != nil && b.Spec.MinAvailable != nil:
		return 0, fmt.Errorf("sets both minAvailable and maxUnavailable")
	case b.Spec.MaxUnavailable != nil:
		return intstr.GetScaledValueFromIntOrPercent(b.Spec.MaxUnavailable, int(replicas), true)
	case b.Spec.MinAvailable != nil:
		min, err := intstr.GetScaledValueFromIntOrPercent(b.Spec.MinAvailable, int(replicas), true)
		return int(replicas) - min, err
	default:
		return 0, fmt.Errorf("sets neither minAvailable nor maxUnavailable")
	}
}

// checkServices: only the gateway is exposed outside the cluster; every
// other Service is ClusterIP; every Service selects pods and ports that
// exist.
func checkServices(t *testing.T, m *manifest) {
	exposed := 0
	for _, s := range m.services {
		where := "Service " + s.Name
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var selected []workload
		for _, w := range m.workloads() {
			if len(s.Spec.Selector) > 0 && sel.Matches(labels.Set(w.template.Labels)) {
				selected = append(selected, w)
			}
		}
		if len(selected) != 1 {
			t.Errorf("%s selects %d workloads, want 1", where, len(selected))
			continue
		}
		w := selected[0]
		switch s.Spec.Type {
		case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
			exposed++
			if w.name != "gateway" {
				t.Errorf("%s is %s and selects %s: only the gateway may be reachable from outside", where, s.Spec.Type, w.name)
			}
		case corev1.ServiceTypeClusterIP, "":
		default:
			t.Errorf("%s has type %s", where, s.Spec.Type)
		}
		if len(s.Spec.ExternalIPs) > 0 {
			t.Errorf("%s has external IPs", where)
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			found := false
			for i := range w.template.Spec.Containers {
				if containerPort(&w.template.Spec.Containers[i], target) != 0 {
					found = true
				}
			}
			if !found {
				t.Errorf("%s port %s targets %s, which %s does not expose", where, p.Name, target.String(), w.name)
			}
		}
	}
	if exposed != 1 {
		t.Errorf("%d Services are exposed outside the cluster, want exactly the gateway's", exposed)
	}
}

// checkNetworkPolicies: ingress is denied by default; only the gateway is
// reachable from outside the namespace, except the Consul agents' health
// checks (namespace consul) on the processes' own http port.
func checkNetworkPolicies(t *testing.T, m *manifest) {
	ws := m.workloads()
	selects := func(sel metav1.LabelSelector) []string {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, w := range ws {
			if s.Matches(labels.Set(w.template.Labels)) {
				names = append(names, w.name)
			}
		}
		sort.Strings(names)
		return names
	}
	denyAll, gatewayOpen := false, false
	for _, p := range m.policies {
		where := "NetworkPolicy " + p.Name
		ingress := slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
		if !ingress {
			t.Errorf("%s does not govern ingress", where)
		}
		targets := selects(p.Spec.PodSelector)
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 && len(p.Spec.Ingress) == 0 {
			denyAll = true
		}
		for i, rule := range p.Spec.Ingress {
			rw := fmt.Sprintf("%s rule %d", where, i)
			if len(rule.From) == 0 {
				// From anywhere.
				if !slices.Equal(targets, []string{"gateway"}) {
					t.Errorf("%s admits traffic from anywhere to %v; only the gateway may be reached from outside", rw, targets)
				} else {
					gatewayOpen = true
				}
				continue
			}
			for _, peer := range rule.From {
				switch {
				case peer.IPBlock != nil:
					if !slices.Equal(targets, []string{"gateway"}) {
						t.Errorf("%s admits an IP block to %v", rw, targets)
					}
				case peer.NamespaceSelector != nil:
					if slices.Equal(targets, []string{"gateway"}) {
						continue
					}
					ns := peer.NamespaceSelector
					if len(ns.MatchExpressions) > 0 || len(ns.MatchLabels) != 1 || ns.MatchLabels["kubernetes.io/metadata.name"] != "consul" {
						t.Errorf("%s admits namespaces %v to %v; only the consul namespace (health checks) may", rw, ns, targets)
					} else if len(rule.Ports) != 1 || rule.Ports[0].Port == nil || rule.Ports[0].Port.String() != "http" {
						t.Errorf("%s admits the consul namespace on ports %v; only the http port is checked", rw, rule.Ports)
					}
				case peer.PodSelector != nil:
					// Pods of this namespace.
				}
			}
		}
	}
	if !denyAll {
		t.Error("no NetworkPolicy denies ingress by default (empty podSelector, no rules)")
	}
	if !gatewayOpen {
		t.Error("no NetworkPolicy lets peers reach the gateway")
	}
}

func TestConsulValues(t *testing.T) {
	var v struct {
		Global struct {
			Name, Datacenter, Image string
		}
		Client struct{ Enabled bool }
		UI     struct {
			Enabled bool
			Service struct{ Type string }
		}
		ConnectInject struct{ Enabled bool } `json:"connectInject"`
	}
	// Helm values are open-ended: decode leniently, check what matters.
	if err := yaml.Unmarshal([]byte(readFile(t, "k8s/consul/values.yaml")), &v); err != nil {
		t.Fatal(err)
	}
	want := "hashicorp/consul:" + scriptDefault(t, "deploy/tools/install-consul.sh", "CONSUL_VERSION")
	if v.Global.Image != want {
		t.Errorf("global.image = %q, want %q: the Consul the project is tested with", v.Global.Image, want)
	}
	if v.Global.Name != "consul" {
		// The NetworkPolicy, docs and Tiltfile use the names it derives.
		t.Errorf("global.name = %q, want consul", v.Global.Name)
	}
	if !v.Client.Enabled {
		t.Error("client.enabled is false: the pods' CONSUL_HTTP_ADDR=$(HOST_IP):8500 needs the client agents")
	}
	if !v.UI.Enabled || v.UI.Service.Type != "ClusterIP" {
		t.Errorf("ui: enabled %v, service type %q; want enabled, ClusterIP (never public)", v.UI.Enabled, v.UI.Service.Type)
	}
	if v.ConnectInject.Enabled {
		t.Error("connectInject is enabled: ParkMesh runs without the service mesh")
	}
}
