package deploy_test

import (
	"context"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "deploy/docker/docker-compose.yml"

// loadCompose loads docker-compose.yml the way `docker compose` does: the
// compose-spec loader, with schema validation (unknown keys fail),
// interpolation, merge keys and path resolution. The environment is empty,
// so the file may not depend on the caller's variables.
func loadCompose(tb testing.TB) *types.Project {
	tb.Helper()
	path := repoPath(tb, composeFile)
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("parkmesh", true) })
	if err != nil {
		tb.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

// Roles of compose services (label org.parkmesh.role).
const (
	roleService = "service"
	roleGateway = "gateway"
	roleConsul  = "consul"
	roleJob     = "job"
	roleTracing = "tracing"
)

// parkmeshListen are the ports of the ParkMesh processes by image target.
var parkmeshListen = map[string]string{"directory": "7101", "project": "7102", "talent": "7103", "gateway": "8080"}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	df := parseDockerfile(t, "deploy/docker/Dockerfile")
	usedVolumes := map[string]bool{}
	for _, name := range sortedServices(p) {
		s := p.Services[name]
		t.Run(name, func(t *testing.T) {
			role := s.Labels["org.parkmesh.role"]
			checkComposeBuild(t, s, df)
			checkComposeHardening(t, s)
			checkComposeHealth(t, s, role, df)
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeVolume {
					t.Errorf("mount %s is a %s: only named volumes, nothing from the host", v.Target, v.Type)
					continue
				}
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("volume %s is not declared", v.Source)
				}
				usedVolumes[v.Source] = true
			}
			for _, port := range s.Ports {
				if role != roleGateway && role != roleConsul && role != roleTracing {
					t.Errorf("publishes port %d; only gateways, Consul UIs and Jaeger are reachable from the host", port.Target)
				}
				if port.HostIP != "127.0.0.1" {
					t.Errorf("publishes port %d on %q, want 127.0.0.1", port.Target, port.HostIP)
				}
			}
			for dep := range s.DependsOn {
				if _, ok := p.Services[dep]; !ok {
					t.Errorf("depends on unknown service %s", dep)
				}
			}
		})
	}
	for v := range p.Volumes {
		if !usedVolumes[v] {
			t.Errorf("volume %s is declared but no service mounts it", v)
		}
	}
}

func sortedServices(p *types.Project) []string {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkComposeBuild: every image is built from the repository's Dockerfile
// (no service pulls an image), named after its target.
func checkComposeBuild(t *testing.T, s types.ServiceConfig, df *dockerfile) {
	if s.Build == nil {
		t.Errorf("no build section: the image would be pulled")
		return
	}
	root := repoRoot(t)
	ctx, err := filepath.Rel(root, s.Build.Context)
	if err != nil || strings.HasPrefix(ctx, "..") {
		t.Errorf("build context %s is outside the repository", s.Build.Context)
		return
	}
	if fi := mustExist(t, "build context", filepath.ToSlash(ctx)); fi != nil && !fi.IsDir() {
		t.Errorf("build context %s is not a directory", ctx)
	}
	dockerfile := filepath.ToSlash(filepath.Join(ctx, s.Build.Dockerfile))
	mustExist(t, "build dockerfile", dockerfile)
	if dockerfile != df.path {
		t.Errorf("builds with %s; want %s", dockerfile, df.path)
	}
	if df.stage(s.Build.Target) == nil {
		t.Errorf("build target %q is no stage of %s", s.Build.Target, df.path)
	}
	checkOwnImage(t, "image", s.Image)
	repo, tag, _ := imageRef(s.Image)
	if repo != "parkmesh/"+s.Build.Target {
		t.Errorf("image %s is built from target %s; name it parkmesh/%s", s.Image, s.Build.Target, s.Build.Target)
	}
	// Consul and Jaeger images are tagged with the version they hold.
	versions := map[string][2]string{"consul": {"consul-build", "CONSUL_VERSION"}, "jaeger": {"jaeger-build", "JAEGER_VERSION"}}
	if v, ok := versions[s.Build.Target]; ok {
		if st := df.stage(v[0]); st == nil || st.vars(df.globalArgs)[v[1]] != tag {
			t.Errorf("image %s: tag is not the %s the Dockerfile builds", s.Image, v[1])
		}
	}
}

func checkComposeHardening(t *testing.T, s types.ServiceConfig) {
	if s.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", s.User)
	}
	if !s.ReadOnly {
		t.Error("root file system is writable (read_only: false)")
	}
	if !slices.Contains(s.CapDrop, "ALL") || len(s.CapAdd) > 0 {
		t.Errorf("capabilities: drop %v, add %v; want drop ALL, add none", s.CapDrop, s.CapAdd)
	}
	if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("security_opt %v lacks no-new-privileges:true", s.SecurityOpt)
	}
	if s.Privileged {
		t.Error("privileged")
	}
	if !slices.Contains(s.Tmpfs, "/tmp") {
		t.Error("no tmpfs at /tmp (the root file system is read-only)")
	}
}

// checkComposeHealth: long-running services restart and have a health
// check whose command the image holds and whose URL is the service's own
// port; one-shot jobs restart on failure only and have none.
func checkComposeHealth(t *testing.T, s types.ServiceConfig, role string, df *dockerfile) {
	if role == roleJob {
		if !strings.HasPrefix(s.Restart, types.RestartPolicyOnFailure) {
			t.Errorf("one-shot job with restart %q, want on-failure", s.Restart)
		}
		if s.HealthCheck == nil || !s.HealthCheck.Disable {
			t.Error("one-shot job: say healthcheck: {disable: true} rather than inherit one")
		}
		return
	}
	if s.Restart != types.RestartPolicyUnlessStopped && s.Restart != types.RestartPolicyAlways {
		t.Errorf("restart %q, want unless-stopped", s.Restart)
	}
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		t.Errorf("health check %v: want an exec-form [CMD, …] test", hc)
		return
	}
	if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
		t.Error("health check without interval, timeout or retries")
	}
	if s.Build == nil {
		return // reported by checkComposeBuild
	}
	if st := df.stage(s.Build.Target); st != nil && !slices.Contains(st.files(), hc.Test[1]) {
		t.Errorf("health check runs %s, which image target %s does not hold", hc.Test[1], s.Build.Target)
	}
	if port, ok := parkmeshListen[s.Build.Target]; ok {
		want := "http://127.0.0.1:" + port + "/readyz"
		if !slices.Contains(hc.Test, want) {
			t.Errorf("health check %v does not probe %s", hc.Test, want)
		}
		if got := env(s, "PARKMESH_LISTEN"); got != "0.0.0.0:"+port {
			t.Errorf("PARKMESH_LISTEN = %q, want 0.0.0.0:%s", got, port)
		}
	}
}

func env(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

func mounts(s types.ServiceConfig) map[string]types.ServiceVolumeConfig {
	m := map[string]types.ServiceVolumeConfig{}
	for _, v := range s.Volumes {
		m[v.Target] = v
	}
	return m
}

// TestComposeParks checks each park of the compose file as a node: its own
// Consul, three services and a gateway on the park's own network, data in
// volumes, keys made by a job and mounted read-only into the gateway.
func TestComposeParks(t *testing.T) {
	p := loadCompose(t)
	parks := map[string]map[string]types.ServiceConfig{} // park → role/target → service
	for name, s := range p.Services {
		park := s.Labels["org.parkmesh.park"]
		if park == "" {
			continue
		}
		if parks[park] == nil {
			parks[park] = map[string]types.ServiceConfig{}
		}
		key := s.Labels["org.parkmesh.role"]
		if (key == roleService || key == roleGateway) && s.Build != nil {
			key = s.Build.Target
		}
		if key == roleJob && len(s.Command) > 0 {
			key = "job-" + s.Command[0]
		}
		if _, dup := parks[park][key]; dup {
			t.Errorf("park %s has two %s", park, key)
		}
		parks[park][key] = s
		if !strings.HasSuffix(name, "-"+park) {
			t.Errorf("service %s of park %s: name it <what>-%s", name, park, park)
		}
	}
	if len(parks) < 2 {
		t.Fatalf("%d parks in the compose file, want two peered parks", len(parks))
	}
	for park, svcs := range parks {
		t.Run(park, func(t *testing.T) {
			for _, want := range []string{roleConsul, "directory", "project", "talent", "gateway", "job-park-init", "job-loadsample"} {
				if _, ok := svcs[want]; !ok {
					t.Errorf("park %s has no %s", park, want)
				}
			}
			consul := svcs[roleConsul]
			for key, s := range svcs {
				nets := slices.Sorted(maps.Keys(s.Networks))
				want := []string{park}
				if key == "gateway" {
					want = append(want, "club")
					slices.Sort(want)
				}
				if !slices.Equal(nets, want) {
					t.Errorf("%s is on networks %v, want %v: only the gateway leaves the park", s.Name, nets, want)
				}
				if got := env(s, "PARKMESH_PARK"); key != roleConsul && got != park {
					t.Errorf("%s: PARKMESH_PARK = %q, want %q", s.Name, got, park)
				}
			}
			if !slices.Contains(consul.Command, "-datacenter="+park) {
				t.Errorf("%s: not a datacenter of its own (%v)", consul.Name, consul.Command)
			}
			if _, ok := mounts(consul)["/consul/data"]; !ok {
				t.Errorf("%s keeps its data (peer state in KV) in no volume", consul.Name)
			}
			consulAddr := consul.Name + ":8500"
			for _, target := range []string{"directory", "project", "talent", "gateway"} {
				s := svcs[target]
				if got := env(s, "PARKMESH_CONSUL"); got != consulAddr {
					t.Errorf("%s: PARKMESH_CONSUL = %q, want its park's agent %s", s.Name, got, consulAddr)
				}
				if got := env(s, "PARKMESH_ADVERTISE"); got != s.Name {
					t.Errorf("%s: PARKMESH_ADVERTISE = %q, want its own name (what Consul checks and the gateway dials)", s.Name, got)
				}
				if _, ok := mounts(s)["/var/lib/parkmesh"]; !ok {
					t.Errorf("%s: its data directory /var/lib/parkmesh is not a volume", s.Name)
				}
				if s.DependsOn[consul.Name].Condition != types.ServiceConditionHealthy {
					t.Errorf("%s does not wait for its Consul to be healthy", s.Name)
				}
				if !strings.HasPrefix(env(s, "OTEL_EXPORTER_OTLP_ENDPOINT"), "http://jaeger:") {
					t.Errorf("%s does not send traces to the compose Jaeger", s.Name)
				}
			}
			gw, keys := svcs["gateway"], svcs["job-park-init"]
			keyVol := mounts(keys)["/var/lib/parkmesh/keys"]
			if keyVol.Source == "" || keyVol.ReadOnly {
				t.Errorf("%s must write the keys to a volume at /var/lib/parkmesh/keys", keys.Name)
			}
			if m := mounts(gw)["/var/lib/parkmesh/keys"]; m.Source != keyVol.Source || !m.ReadOnly {
				t.Errorf("%s: keys mount %+v, want volume %s read-only", gw.Name, m, keyVol.Source)
			}
			if gw.DependsOn[keys.Name].Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s does not wait for %s to complete", gw.Name, keys.Name)
			}
			if u := env(gw, "PARKMESH_PUBLIC_URL"); u != "http://"+gw.Name+":8080" {
				t.Errorf("%s: PARKMESH_PUBLIC_URL = %q, want http://%s:8080 (peers reach it on the club network)", gw.Name, u, gw.Name)
			}
			sample := svcs["job-loadsample"]
			if env(sample, "PARKMESH_GATEWAY") != "http://"+gw.Name+":8080" || sample.DependsOn[gw.Name].Condition != types.ServiceConditionHealthy {
				t.Errorf("%s must load through %s once it is healthy", sample.Name, gw.Name)
			}
			if m := mounts(sample)["/var/lib/parkmesh/keys"]; m.Source != keyVol.Source || !m.ReadOnly {
				t.Errorf("%s: mount the park's keys read-only to sign its token", sample.Name)
			}
		})
	}

	// One job peers every pair of parks, through each gateway's URL, with
	// each park's keys read-only.
	var peering *types.ServiceConfig
	for _, s := range p.Services {
		if s.Labels["org.parkmesh.role"] == roleJob && len(s.Command) > 0 && s.Command[0] == "peer-parks" {
			if peering != nil {
				t.Fatal("two peering jobs")
			}
			peering = &s
		}
	}
	if peering == nil {
		t.Fatal("no peering job (command peer-parks)")
	}
	listed := map[string]string{}
	for _, e := range strings.Fields(env(*peering, "PARKMESH_PEERS")) {
		park, u, _ := strings.Cut(e, "=")
		listed[park] = u
	}
	for park, svcs := range parks {
		gw := svcs["gateway"]
		if listed[park] != env(gw, "PARKMESH_PUBLIC_URL") {
			t.Errorf("PARKMESH_PEERS gives %s at %q, its gateway is at %q", park, listed[park], env(gw, "PARKMESH_PUBLIC_URL"))
		}
		if _, err := url.Parse(listed[park]); err != nil {
			t.Error(err)
		}
		m := mounts(*peering)["/parks/"+park+"/keys"]
		if m.Source != mounts(gw)["/var/lib/parkmesh/keys"].Source || !m.ReadOnly {
			t.Errorf("peering job: %s's keys are not mounted read-only at /parks/%s/keys", park, park)
		}
		if peering.DependsOn[gw.Name].Condition != types.ServiceConditionHealthy {
			t.Errorf("peering job does not wait for %s", gw.Name)
		}
	}
	if len(listed) != len(parks) {
		t.Errorf("PARKMESH_PEERS names %d parks, the file runs %d", len(listed), len(parks))
	}
	if nets := slices.Sorted(maps.Keys(peering.Networks)); !slices.Equal(nets, []string{"club"}) {
		t.Errorf("peering job is on %v, want only the club network", nets)
	}
}

// TestImagesAgree: the images the manifests run are the images compose
// builds, from the same Dockerfile targets.
func TestImagesAgree(t *testing.T) {
	p := loadCompose(t)
	built := map[string]bool{}
	for _, s := range p.Services {
		built[s.Image] = true
	}
	for _, park := range overlays(t) {
		m := decodeStrict(t, park, render(t, "k8s/overlays/"+park))
		for _, w := range m.workloads() {
			for _, c := range w.template.Spec.Containers {
				if !built[c.Image] {
					t.Errorf("overlay %s runs %s, which docker-compose.yml does not build (same name and tag)", park, c.Image)
				}
			}
		}
	}
}
