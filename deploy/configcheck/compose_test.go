package configcheck

import (
	"context"
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
	roleGateway = "gateway"
	roleConsul  = "consul"
	roleJob     = "job"
	roleTracing = "tracing"
)

const clubNetwork = "club"

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

// TestComposeHardening: every container is built here, runs unprivileged
// on a read-only root, keeps data in named volumes only, and publishes
// only what staff and operators use, on loopback.
func TestComposeHardening(t *testing.T) {
	p := loadCompose(t)
	df := readDockerfile(t, dockerfilePath)
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		t.Run(name, func(t *testing.T) {
			role := s.Labels["org.parkmesh.role"]
			if s.Build == nil {
				t.Fatal("no build section: the image would be pulled")
			}
			if rel, err := filepath.Rel(repoRoot(t), filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil || filepath.ToSlash(rel) != dockerfilePath {
				t.Errorf("built from %s, want %s", filepath.Join(s.Build.Context, s.Build.Dockerfile), dockerfilePath)
			}
			if len(df.chain(s.Build.Target)) == 0 {
				t.Errorf("build target %q is no stage of %s", s.Build.Target, dockerfilePath)
			}
			checkOwnImage(t, "image", s.Image)
			if s.User != nonRootUser || !s.ReadOnly || s.Privileged {
				t.Errorf("user %q, read_only %v, privileged %v; want %s, a read-only root, unprivileged", s.User, s.ReadOnly, s.Privileged, nonRootUser)
			}
			if !slices.Contains(s.CapDrop, "ALL") || len(s.CapAdd) > 0 {
				t.Errorf("capabilities: drop %v, add %v; want drop ALL, add none", s.CapDrop, s.CapAdd)
			}
			if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("security_opt %v lacks no-new-privileges:true", s.SecurityOpt)
			}
			if !slices.Contains(s.Tmpfs, "/tmp") {
				t.Error("no tmpfs at /tmp (the root file system is read-only)")
			}
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeVolume {
					t.Errorf("mount %s is a %s: only named volumes, nothing from the host", v.Target, v.Type)
				}
			}
			if role != roleJob && (s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Test[0] != "CMD") {
				t.Errorf("long-running service without an exec-form health check: %v", s.HealthCheck)
			}
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("publishes port %d on %q, want 127.0.0.1", port.Target, port.HostIP)
				}
				switch role {
				case roleConsul, roleTracing:
				case roleGateway:
					if port.Target != gatewayParkPort {
						t.Errorf("publishes the gateway's port %d; only the park port %d is for the host's staff", port.Target, gatewayParkPort)
					}
				default:
					t.Errorf("publishes port %d; only gateways, Consul UIs and Jaeger are reachable from the host", port.Target)
				}
			}
		})
	}
}

// gatewayRef matches the URLs and addresses naming a gateway container.
var gatewayRef = regexp.MustCompile(`gateway-([a-z0-9-]+):([0-9]+)`)

// TestComposeParks checks each park as a node (its own Consul, network and
// keys; the gateway's two listeners) and the club: peers reach each other
// through the federation port only.
func TestComposeParks(t *testing.T) {
	p := loadCompose(t)
	parks := map[string]map[string]types.ServiceConfig{} // park → role or target → service
	for _, s := range p.Services {
		park := s.Labels["org.parkmesh.park"]
		if park == "" {
			continue
		}
		if parks[park] == nil {
			parks[park] = map[string]types.ServiceConfig{}
		}
		key := s.Labels["org.parkmesh.role"]
		if s.Build != nil && (key == "service" || key == roleGateway) {
			key = s.Build.Target
		}
		if key == roleJob && len(s.Command) > 0 {
			key = "job-" + s.Command[0]
		}
		if _, dup := parks[park][key]; dup {
			t.Errorf("park %s has two %s", park, key)
		}
		parks[park][key] = s
	}
	if len(parks) < 2 {
		t.Fatalf("%d parks in %s, want two peered parks", len(parks), composeFile)
	}
	for _, s := range p.Services {
		if _, on := s.Networks[clubNetwork]; on && s.Labels["org.parkmesh.role"] != roleGateway {
			t.Errorf("%s is on the club network, which only gateways join", s.Name)
		}
	}

	for park, svcs := range parks {
		t.Run(park, func(t *testing.T) {
			for _, want := range []string{roleConsul, "directory", "project", "talent", "gateway", "job-park-init", "job-loadsample"} {
				if _, ok := svcs[want]; !ok {
					t.Fatalf("park %s has no %s", park, want)
				}
			}
			consul := svcs[roleConsul]
			for key, s := range svcs {
				want := []string{park}
				if key == "gateway" {
					want = append(want, clubNetwork)
					slices.Sort(want)
				}
				if nets := slices.Sorted(maps.Keys(s.Networks)); !slices.Equal(nets, want) {
					t.Errorf("%s is on networks %v, want %v: only the gateway leaves the park", s.Name, nets, want)
				}
				if key != roleConsul && env(s, "PARKMESH_PARK") != park {
					t.Errorf("%s: PARKMESH_PARK = %q, want %q", s.Name, env(s, "PARKMESH_PARK"), park)
				}
				// Within the park, anything naming another park's
				// gateway is a peer and must use its federation port.
				for k, v := range s.Environment {
					for _, m := range gatewayRef.FindAllStringSubmatch(deref(v), -1) {
						if m[1] != park && m[2] != strconv.Itoa(gatewayFederationPort) {
							t.Errorf("%s: %s names park %s's gateway on port %s; peers use the federation port %d", s.Name, k, m[1], m[2], gatewayFederationPort)
						}
					}
				}
			}
			for _, target := range []string{"directory", "project", "talent", "gateway"} {
				s := svcs[target]
				if got, want := env(s, "PARKMESH_CONSUL"), consul.Name+":8500"; got != want {
					t.Errorf("%s: PARKMESH_CONSUL = %q, want its park's agent %s", s.Name, got, want)
				}
				if env(s, "PARKMESH_ADVERTISE") != s.Name {
					t.Errorf("%s: PARKMESH_ADVERTISE = %q, want its own name (what Consul checks and the gateway dials)", s.Name, env(s, "PARKMESH_ADVERTISE"))
				}
				if port, ok := servicePorts[target]; ok {
					checkComposeListener(t, s, "PARKMESH_LISTEN", port)
					checkComposeProbe(t, s, port)
				}
			}
			if !slices.Contains(consul.Command, "-datacenter="+park) {
				t.Errorf("%s: not a datacenter of its own (%v)", consul.Name, consul.Command)
			}

			gw := svcs["gateway"]
			checkComposeListener(t, gw, "PARKMESH_LISTEN", gatewayParkPort)
			checkComposeListener(t, gw, "PARKMESH_FEDERATION_LISTEN", gatewayFederationPort)
			checkComposeProbe(t, gw, gatewayParkPort)
			if got, want := env(gw, "PARKMESH_PUBLIC_URL"), "http://"+gw.Name+":"+strconv.Itoa(gatewayFederationPort); got != want {
				t.Errorf("%s: PARKMESH_PUBLIC_URL = %q, want %q (peers reach the federation port on the club network)", gw.Name, got, want)
			}
			keys := svcs["job-park-init"]
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
			// The sample job is the park's staff: the park port.
			sample := svcs["job-loadsample"]
			if got, want := env(sample, "PARKMESH_GATEWAY"), parkURL(gw); got != want {
				t.Errorf("%s: PARKMESH_GATEWAY = %q, want the park side %s", sample.Name, got, want)
			}
		})
	}

	// One job acts as every park's IT team: it calls each gateway's park
	// side (the admin API) on that park's network, never over the club.
	var peering []types.ServiceConfig
	for _, s := range p.Services {
		if s.Labels["org.parkmesh.role"] == roleJob && len(s.Command) > 0 && s.Command[0] == "peer-parks" {
			peering = append(peering, s)
		}
	}
	if len(peering) != 1 {
		t.Fatalf("%d peering jobs (command peer-parks), want 1", len(peering))
	}
	job := peering[0]
	listed := map[string]string{}
	for _, e := range strings.Fields(env(job, "PARKMESH_PEERS")) {
		park, u, _ := strings.Cut(e, "=")
		listed[park] = u
	}
	if len(listed) != len(parks) {
		t.Errorf("PARKMESH_PEERS names %d parks, the file runs %d", len(listed), len(parks))
	}
	for park, svcs := range parks {
		gw := svcs["gateway"]
		if listed[park] != parkURL(gw) {
			t.Errorf("PARKMESH_PEERS gives %s at %q, want its gateway's park side %s", park, listed[park], parkURL(gw))
		}
		if _, on := job.Networks[park]; !on {
			t.Errorf("the peering job is not on %s's network, where its gateway's park side is", park)
		}
		m := mounts(job)["/parks/"+park+"/keys"]
		if m.Source != mounts(gw)["/var/lib/parkmesh/keys"].Source || !m.ReadOnly {
			t.Errorf("peering job: %s's keys are not mounted read-only at /parks/%s/keys", park, park)
		}
		if job.DependsOn[gw.Name].Condition != types.ServiceConditionHealthy {
			t.Errorf("peering job does not wait for %s", gw.Name)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func parkURL(gw types.ServiceConfig) string {
	return (&url.URL{Scheme: "http", Host: gw.Name + ":" + strconv.Itoa(gatewayParkPort)}).String()
}

func checkComposeListener(t *testing.T, s types.ServiceConfig, variable string, port int) {
	t.Helper()
	if got, want := env(s, variable), "0.0.0.0:"+strconv.Itoa(port); got != want {
		t.Errorf("%s: %s = %q, want %q", s.Name, variable, got, want)
	}
}

// checkComposeProbe: the health check asks the process's readiness where
// it serves it.
func checkComposeProbe(t *testing.T, s types.ServiceConfig, port int) {
	t.Helper()
	want := "http://127.0.0.1:" + strconv.Itoa(port) + "/readyz"
	if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, want) {
		t.Errorf("%s: health check does not probe %s", s.Name, want)
	}
}

// TestImagesAgree: the images the manifests run are the images compose
// builds (same name and tag).
func TestImagesAgree(t *testing.T) {
	built := map[string]bool{}
	for _, s := range loadCompose(t).Services {
		built[s.Image] = true
	}
	for _, park := range overlays(t) {
		dir := "k8s/overlays/" + park
		for _, w := range decodeStrict(t, dir, render(t, dir)).workloads() {
			for _, c := range w.template.Spec.Containers {
				if !built[c.Image] {
					t.Errorf("overlay %s runs %s, which %s does not build", park, c.Image, composeFile)
				}
			}
		}
	}
}
