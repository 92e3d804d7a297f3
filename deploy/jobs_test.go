package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parkmesh/parkmesh/deploy/local/sample"
	"github.com/parkmesh/parkmesh/pkg/nodetest"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// The compose file's one-shot jobs run shell scripts (deploy/docker/scripts)
// and loadsample in the admin image. Without a container engine, run the
// same scripts with the same environment against real parks: binaries from
// the Dockerfile's own build, real Consul agents, real gateways.

// job runs a compose job's command with the binaries the admin image holds
// on PATH and env as in docker-compose.yml.
func job(t *testing.T, env map[string]string, command ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin, _ := dockerfileBinaries(t)
	if script := repoPath(t, "deploy/docker/scripts/"+command[0]); fileExists(script) {
		// The image's /usr/local/bin holds the scripts, with mode 0755.
		command = append([]string{"sh", script}, command[1:]...)
	} else {
		command[0] = filepath.Join(bin, command[0])
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

func TestParkInitJob(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PARKMESH_PARK": "xian-hitech", "PARKMESH_DATA_DIR": dir}
	out, errOut, err := job(t, env, "park-init")
	if err != nil {
		t.Fatalf("park-init: %v\n%s%s", err, out, errOut)
	}
	ks, err := parkkey.Load(dir)
	if err != nil {
		t.Fatalf("no key set after park-init: %v", err)
	}
	if ks.Park() != "xian-hitech" || !strings.Contains(out, ks.Current().ID) {
		t.Errorf("park-init made keys of %s, printed %q", ks.Park(), out)
	}
	// Every `docker compose up` runs it again: it must keep the key.
	out, errOut, err = job(t, env, "park-init")
	if err != nil || !strings.Contains(out, "already has its key set") {
		t.Fatalf("second park-init: %v\n%s%s", err, out, errOut)
	}
	if again, err := parkkey.Load(dir); err != nil || again.Current().ID != ks.Current().ID {
		t.Errorf("second park-init changed the key: %v", err)
	}
	if _, _, err := job(t, map[string]string{"PARKMESH_DATA_DIR": dir}, "park-init"); err == nil {
		t.Error("park-init without PARKMESH_PARK succeeded")
	}
}

// TestPeeringAndSampleJobs runs the peering job and the sample-data jobs
// against two real parks, twice each, as two `docker compose up` would.
func TestPeeringAndSampleJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("short: starts two parks with their Consul agents")
	}
	parks := []*nodetest.Park{nodetest.StartPark(t, "xian-hitech"), nodetest.StartPark(t, "chengdu-hitech")}
	root := t.TempDir() // PARKS_ROOT: each park's key directory under its id
	var peers []string
	for _, p := range parks {
		if err := os.Symlink(p.DataDir, filepath.Join(root, p.ID)); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p.ID+"="+p.GatewayURL)
	}
	env := map[string]string{"PARKMESH_PEERS": strings.Join(peers, "\n        "), "PARKS_ROOT": root}

	out, errOut, err := job(t, env, "peer-parks")
	if err != nil {
		t.Fatalf("peer-parks: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "xian-hitech and chengdu-hitech are peers") {
		t.Errorf("peer-parks printed %q", out)
	}
	for i, p := range parks {
		other := parks[1-i]
		status, body := p.Do(context.Background(), http.MethodGet, "/api/v1/peers", p.Token(parktoken.Admin), nil)
		var got struct{ Peers []struct{ Park string } }
		if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil {
			t.Fatalf("%s: GET /api/v1/peers: %d %s", p.ID, status, body)
		}
		if len(got.Peers) != 1 || got.Peers[0].Park != other.ID {
			t.Errorf("%s's peers are %+v, want %s", p.ID, got.Peers, other.ID)
		}
	}
	out, errOut, err = job(t, env, "peer-parks")
	if err != nil || !strings.Contains(out, "already peers") {
		t.Errorf("second peer-parks: %v\n%s%s", err, out, errOut)
	}

	for _, p := range parks {
		f, err := sample.Load(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"PARKMESH_PARK": p.ID, "PARKMESH_GATEWAY": p.GatewayURL, "PARKMESH_DATA_DIR": p.DataDir}
		out, errOut, err := job(t, env, "loadsample")
		if err != nil || strings.TrimSpace(out) != strconv.Itoa(len(f.Listings)) {
			t.Fatalf("%s: loadsample printed %q, want %d: %v\n%s", p.ID, out, len(f.Listings), err, errOut)
		}
		out, errOut, err = job(t, env, "loadsample")
		if err != nil || strings.TrimSpace(out) != "0" {
			t.Errorf("%s: second loadsample printed %q, want 0 (already loaded): %v\n%s", p.ID, out, err, errOut)
		}
	}
}
