package configcheck

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The systemd units of a node on a real host (deploy/systemd), read as
// they are: the units are static, so what is checked here is what an
// operator copies to /etc/systemd/system.

const systemdDir = "deploy/systemd"

// The node's layout on a host, as the units and README.md name it.
const (
	hostUnitDir  = "/etc/systemd/system"
	hostBinDir   = "/opt/parkmesh/bin"
	hostDataDir  = "/var/lib/parkmesh"
	hostKeysDir  = hostDataDir + "/keys"
	hostEnvFile  = "/etc/parkmesh/parkmesh.env"
	hostTokenDir = "/etc/parkmesh/tokens"
	nodeTarget   = "parkmesh.target"
	envTemplate  = systemdDir + "/parkmesh.env.example"
)

// systemdProcesses are the node's processes: the process's name (its
// binary's, as `go build -o DIR/` names it after the main package's
// directory) → its main package.
var systemdProcesses = map[string]string{
	"directory": "services/directory/cmd/directory",
	"project":   "services/project/cmd/project",
	"talent":    "services/talent/cmd/talent",
	"gateway":   "gateway/cmd/gateway",
}

func unitName(process string) string { return "parkmesh-" + process + ".service" }

// unitFile is a parsed unit file: section → key → every value assigned,
// in order (an empty assignment resets a list setting and is kept).
type unitFile map[string]map[string][]string

// parseUnit reads a unit file's text. It knows comments, sections and
// assignments; a continued line (trailing backslash) is an error rather
// than a misread, since the units here have none.
func parseUnit(text string) (unitFile, error) {
	u := unitFile{}
	section := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, `\`):
			return nil, fmt.Errorf("line %d: continued lines are not supported here", i+1)
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		case section == "":
			return nil, fmt.Errorf("line %d: %q before any section", i+1, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not key=value", i+1, line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			u[section][k] = append(u[section][k], v)
		}
	}
	return u, nil
}

// last is the value in effect for key: its last assignment.
func (u unitFile) last(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// words are the space-separated words of every assignment of key since
// its last reset (an empty assignment).
func (u unitFile) words(section, key string) []string {
	var ws []string
	for _, v := range u[section][key] {
		if v == "" {
			ws = nil
			continue
		}
		ws = append(ws, strings.Fields(v)...)
	}
	return ws
}

// environment is what the unit's Environment= lines set.
func (u unitFile) environment() map[string]string {
	env := map[string]string{}
	for _, w := range u.words("Service", "Environment") {
		k, v, _ := strings.Cut(w, "=")
		env[k] = v
	}
	return env
}

func readUnit(tb testing.TB, name string) unitFile {
	tb.Helper()
	u, err := parseUnit(readFile(tb, systemdDir+"/"+name))
	if err != nil {
		tb.Fatalf("%s/%s: %v", systemdDir, name, err)
	}
	return u
}

// shutdownTimeout is how long a process drains after SIGTERM
// (pkg/httpserver.ShutdownTimeout), read from its source.
func shutdownTimeout(tb testing.TB) time.Duration {
	tb.Helper()
	const file = "pkg/httpserver/httpserver.go"
	m := regexp.MustCompile(`\bShutdownTimeout\s*=\s*(\d+)\s*\*\s*time\.Second\b`).FindStringSubmatch(readFile(tb, file))
	if m == nil {
		tb.Fatalf("%s: no `ShutdownTimeout = N * time.Second`: did it move?", file)
	}
	d, _ := time.ParseDuration(m[1] + "s")
	return d
}

// telemetryFlush is the most a process spends flushing spans after the
// drain (telemetryFlushTimeout in the services' and the gateway's Close).
const telemetryFlush = 5 * time.Second

// hardeningProblems lists what unit u, running process, lacks of what
// every ParkMesh unit must have; nil when nothing. drain is how long the
// process may take to stop after SIGTERM.
func hardeningProblems(u unitFile, process string, drain time.Duration) []string {
	var p []string
	want := func(section, key, value string) {
		if got, ok := u.last(section, key); !ok || got != value {
			p = append(p, fmt.Sprintf("[%s] %s=%s, have %q", section, key, value, got))
		}
	}
	wantWords := func(section, key string, values ...string) {
		have := u.words(section, key)
		for _, v := range values {
			if !slices.Contains(have, v) {
				p = append(p, fmt.Sprintf("[%s] %s must include %s, have %q", section, key, v, have))
			}
		}
	}
	wantExactly := func(section, key string, values ...string) {
		if have := u.words(section, key); !slices.Equal(slices.Sorted(slices.Values(have)), slices.Sorted(slices.Values(values))) {
			p = append(p, fmt.Sprintf("[%s] %s must be exactly %q, have %q", section, key, values, have))
		}
	}
	wantDuration := func(key string, atLeast time.Duration) {
		v, _ := u.last("Service", key)
		d, err := time.ParseDuration(v)
		if err != nil || d < atLeast {
			p = append(p, fmt.Sprintf("[Service] %s must be a duration of at least %s, have %q", key, atLeast, v))
		}
	}

	// Order: after the network and the park's Consul agent; restart with
	// the node.
	wantWords("Unit", "After", "consul.service", "network-online.target")
	wantWords("Unit", "Wants", "network-online.target")
	want("Unit", "PartOf", nodeTarget)
	want("Install", "WantedBy", nodeTarget)

	// What runs, as whom, configured how: the binary alone on the command
	// line (argv is visible to every local user), the rest from the
	// environment.
	want("Service", "ExecStart", hostBinDir+"/"+process)
	want("Service", "User", "parkmesh")
	if v, _ := u.last("Service", "DynamicUser"); v != "" && v != "no" {
		p = append(p, "[Service] DynamicUser: the data must persist, owned by the parkmesh user")
	}
	want("Service", "EnvironmentFile", hostEnvFile)
	env := u.environment()
	if env["PARKMESH_DATA_DIR"] != hostDataDir {
		p = append(p, fmt.Sprintf("[Service] Environment=PARKMESH_DATA_DIR=%s, have %q", hostDataDir, env["PARKMESH_DATA_DIR"]))
	}
	listen := fmt.Sprintf("127.0.0.1:%d", gatewayParkPort)
	if port, ok := servicePorts[process]; ok {
		listen = fmt.Sprintf("127.0.0.1:%d", port)
	}
	if env["PARKMESH_LISTEN"] != listen {
		p = append(p, fmt.Sprintf("[Service] Environment=PARKMESH_LISTEN=%s, have %q", listen, env["PARKMESH_LISTEN"]))
	}

	// The Consul token: a root-only file systemd hands to this process
	// alone, named in the environment by path, never the token itself.
	want("Service", "LoadCredential", "consul.token:"+hostTokenDir+"/"+process+"/consul.token")
	if env["PARKMESH_CONSUL_TOKEN_FILE"] != "%d/consul.token" {
		p = append(p, fmt.Sprintf("[Service] Environment=PARKMESH_CONSUL_TOKEN_FILE=%%d/consul.token, have %q", env["PARKMESH_CONSUL_TOKEN_FILE"]))
	}
	secretName := regexp.MustCompile(`TOKEN|SECRET|PASSWORD|PRIVATE|KEY`)
	for k := range env {
		if secretName.MatchString(k) && !strings.HasSuffix(k, "_FILE") {
			p = append(p, fmt.Sprintf("[Service] Environment=%s: a secret goes in a file, not in a unit", k))
		}
	}

	// Failure and stop: restart after a crash; SIGTERM, then time to
	// deregister, drain and flush before systemd kills.
	want("Service", "Restart", "on-failure")
	wantDuration("RestartSec", time.Second)
	want("Service", "KillSignal", "SIGTERM")
	wantDuration("TimeoutStopSec", drain+telemetryFlush)

	// The sandbox: the data directory is the only writable place.
	want("Service", "ProtectSystem", "strict")
	wantExactly("Service", "ReadWritePaths", hostDataDir)
	want("Service", "NoNewPrivileges", "yes")
	want("Service", "PrivateTmp", "yes")
	want("Service", "ProtectHome", "yes")
	if v, ok := u.last("Service", "CapabilityBoundingSet"); !ok || v != "" {
		p = append(p, fmt.Sprintf("[Service] CapabilityBoundingSet= (empty: no capabilities), have %q", v))
	}
	wantExactly("Service", "RestrictAddressFamilies", "AF_INET", "AF_INET6", "AF_UNIX")
	wantWords("Service", "SystemCallFilter", "@system-service")
	// The park's signing keys: the gateway reads them, never writes them;
	// the services have no business with them.
	if process == "gateway" {
		wantWords("Service", "ReadOnlyPaths", "-"+hostKeysDir)
	} else {
		wantWords("Service", "InaccessiblePaths", "-"+hostKeysDir)
	}
	return p
}

// TestSystemdUnitsAreTheNode: deploy/systemd holds one unit per process
// of the node, each running a binary the repository builds, and a target
// that enables and stops them together.
func TestSystemdUnitsAreTheNode(t *testing.T) {
	entries, err := os.ReadDir(repoPath(t, systemdDir))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".service") || strings.HasSuffix(n, ".target") {
			got = append(got, n)
		}
	}
	var want, services []string
	for process, main := range systemdProcesses {
		mustExist(t, "the main package of "+unitName(process), main)
		if path.Base(main) != process {
			t.Errorf("%s: `go build -o %s/` names its binary %s, not %s", main, hostBinDir, path.Base(main), process)
		}
		services = append(services, unitName(process))
	}
	want = append(slices.Clone(services), nodeTarget)
	slices.Sort(got)
	slices.Sort(want)
	slices.Sort(services)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds the units %q, want %q", systemdDir, got, want)
	}
	mustExist(t, "the environment file template", envTemplate)

	target := readUnit(t, nodeTarget)
	if got := slices.Sorted(slices.Values(target.words("Install", "Also"))); !slices.Equal(got, services) {
		t.Errorf("%s: [Install] Also=%q, want every process's unit %q, so enabling the target enables them", nodeTarget, got, services)
	}
	if v, _ := target.last("Install", "WantedBy"); v != "multi-user.target" {
		t.Errorf("%s: [Install] WantedBy=%q, want multi-user.target", nodeTarget, v)
	}
}

// TestSystemdUnitsHardened: every unit runs as the parkmesh user, writes
// only the data directory, has no capabilities and no way to gain any,
// restarts on failure, stops gracefully and starts after Consul.
func TestSystemdUnitsHardened(t *testing.T) {
	drain := shutdownTimeout(t)
	for _, process := range slices.Sorted(maps.Keys(systemdProcesses)) {
		name := unitName(process)
		for _, problem := range hardeningProblems(readUnit(t, name), process, drain) {
			t.Errorf("%s/%s: %s", systemdDir, name, problem)
		}
	}
}

// TestSystemdHardeningCheckNoticesARemovedLine: the check above fails
// when any one line it relies on is taken out of a unit, so a unit that
// loses its hardening cannot pass it.
func TestSystemdHardeningCheckNoticesARemovedLine(t *testing.T) {
	drain := shutdownTimeout(t)
	for _, process := range []string{"directory", "gateway"} {
		name := unitName(process)
		text := readFile(t, systemdDir+"/"+name)
		checked := regexp.MustCompile(`^(After=.*consul\.service|Wants|PartOf|WantedBy|ExecStart|User|EnvironmentFile|Environment=PARKMESH_(DATA_DIR|LISTEN|CONSUL_TOKEN_FILE)|LoadCredential|Restart|RestartSec|KillSignal|TimeoutStopSec|ProtectSystem|ReadWritePaths|NoNewPrivileges|PrivateTmp|ProtectHome|CapabilityBoundingSet|RestrictAddressFamilies|SystemCallFilter=@|ReadOnlyPaths|InaccessiblePaths)\b`)
		lines := strings.Split(text, "\n")
		removed := 0
		for i, line := range lines {
			if !checked.MatchString(line) {
				continue
			}
			removed++
			without := strings.Join(slices.Delete(slices.Clone(lines), i, i+1), "\n")
			u, err := parseUnit(without)
			if err != nil {
				t.Fatal(err)
			}
			if len(hardeningProblems(u, process, drain)) == 0 {
				t.Errorf("%s without %q still passes the hardening check", name, line)
			}
		}
		if removed < 20 {
			t.Errorf("%s: only %d checked lines found; did the unit's layout change?", name, removed)
		}
	}
}

// parkmeshVars returns the PARKMESH_ variables text assigns, also in
// commented-out lines (`#PARKMESH_X=…`): a template's suggestions must
// name flags too.
func parkmeshVars(text string) map[string]bool {
	vars := map[string]bool{}
	for _, m := range regexp.MustCompile(`\b(PARKMESH_[A-Z0-9_]+)=`).FindAllStringSubmatch(text, -1) {
		vars[m[1]] = true
	}
	return vars
}

// TestSystemdVariablesNameFlags: every PARKMESH_ variable a unit sets is
// a flag of the process it runs, and every one the environment file
// template sets or suggests is a flag of the gateway or the services —
// a misspelt variable would be ignored without a word. The template sets
// what a park must set, and none of what the units set per process.
func TestSystemdVariablesNameFlags(t *testing.T) {
	gateway, services := envNames(gatewayFlags(t)), envNames(serviceFlags(t))
	known := func(defined map[string]bool, v string) bool { return defined[v] }
	for _, process := range slices.Sorted(maps.Keys(systemdProcesses)) {
		defined := services
		if process == "gateway" {
			defined = gateway
		}
		name := unitName(process)
		for v := range readUnit(t, name).environment() {
			if strings.HasPrefix(v, "PARKMESH_") && !known(defined, v) {
				t.Errorf("%s/%s sets %s, which names no flag of %s", systemdDir, name, v, process)
			}
		}
	}
	text := readFile(t, envTemplate)
	for v := range parkmeshVars(text) {
		if !known(gateway, v) && !known(services, v) {
			t.Errorf("%s names %s, which is no flag of the gateway or the services", envTemplate, v)
		}
	}
	set := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			set[strings.TrimSpace(k)] = true
		}
	}
	for _, v := range []string{"PARKMESH_PARK", "PARKMESH_CONSUL", "PARKMESH_FEDERATION_LISTEN", "PARKMESH_PUBLIC_URL"} {
		if !set[v] {
			t.Errorf("%s does not set %s, which every park sets", envTemplate, v)
		}
	}
	// Set here, they would override every unit's own (EnvironmentFile=
	// wins over Environment=), or put a secret in the environment.
	for _, v := range []string{"PARKMESH_LISTEN", "PARKMESH_DATA_DIR", "PARKMESH_CONSUL_TOKEN_FILE", "PARKMESH_ADVERTISE", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE"} {
		if set[v] {
			t.Errorf("%s sets %s, which belongs to each unit (or is a secret)", envTemplate, v)
		}
	}
}

// systemdAnalyze returns the path of systemd-analyze, from Debian's
// systemd package (deploy/tools/install-systemd-analyze.sh). In CI its
// absence fails: the units would go unchecked. Elsewhere the test skips,
// saying how to get it.
func systemdAnalyze(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("systemd-analyze is not on PATH (CI=true: `make tools` installs it with deploy/tools/install-systemd-analyze.sh): %v", err)
	}
	tb.Skipf("systemd-analyze is not on PATH, so the units are not verified here: run deploy/tools/install-systemd-analyze.sh (apt-get install systemd) or `make tools`")
	return ""
}

// hostUnitDirs are where Debian's systemd package keeps the system's own
// units (sysinit.target and the rest verify needs).
var hostUnitDirs = []string{"/usr/lib/systemd/system", "/lib/systemd/system"}

// stageHost lays out a stand-in host under a new root: the system's own
// units, the node's units and environment file where README.md installs
// them, stand-in executables where the binaries go and the Consul token
// files the units load.
func stageHost(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	mkdir := func(dir string) string {
		t.Helper()
		d := filepath.Join(root, filepath.FromSlash(dir))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	write := func(name, text string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(name)), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	systemUnits := ""
	for _, d := range hostUnitDirs {
		if st, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil && st.Mode().IsRegular() {
			systemUnits = d
			break
		}
	}
	if systemUnits == "" {
		t.Fatalf("none of %q holds sysinit.target: is Debian's systemd package installed?", hostUnitDirs)
	}
	mkdir("usr/lib/systemd")
	if out, err := exec.Command("cp", "-a", systemUnits, filepath.Join(root, "usr/lib/systemd/system")).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", systemUnits, err, out)
	}
	mkdir(hostUnitDir)
	mkdir(hostBinDir)
	mkdir(path.Dir(hostEnvFile))
	mkdir(hostDataDir)
	write(hostEnvFile, readFile(t, envTemplate), 0o600)
	write(hostUnitDir+"/"+nodeTarget, readFile(t, systemdDir+"/"+nodeTarget), 0o644)
	for process := range systemdProcesses {
		write(hostUnitDir+"/"+unitName(process), readFile(t, systemdDir+"/"+unitName(process)), 0o644)
		write(hostBinDir+"/"+process, "#!/bin/sh\nexit 0\n", 0o755)
		mkdir(hostTokenDir + "/" + process)
		write(hostTokenDir+"/"+process+"/consul.token", "00000000-0000-0000-0000-000000000000\n", 0o600)
	}
	return root
}

// maxExposure is the highest `systemd-analyze security` exposure a unit
// may have, in its tenths (2.0 of 10: "OK"; the units are at about 1.5,
// the rest being the network a server needs).
const maxExposure = 20

// TestSystemdAnalyzeVerify: systemd's own checker accepts every unit, on
// a stand-in host laid out as README.md installs a node, without a
// single warning (verify reports an unknown or misspelt setting only as
// a warning, and ignores the setting); and systemd's exposure score of
// every process's unit stays low.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	root := stageHost(t)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(sa, args...)
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=", "LC_ALL=C.UTF-8")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	units := []string{hostUnitDir + "/" + nodeTarget}
	for _, process := range slices.Sorted(maps.Keys(systemdProcesses)) {
		units = append(units, hostUnitDir+"/"+unitName(process))
	}
	args := append([]string{"verify", "--root=" + root, "--man=no", "--generators=no"}, units...)
	if out, err := run(args...); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, u := range units[1:] {
		if out, err := run("security", "--offline=true", "--root="+root, fmt.Sprintf("--threshold=%d", maxExposure), "--no-pager", u); err != nil {
			t.Errorf("systemd-analyze security %s: exposure above %d.%d (%v):\n%s", path.Base(u), maxExposure/10, maxExposure%10, err, out)
		}
	}

	// The check is alive: a stand-in host without a binary, and a unit
	// with a misspelt setting, are refused.
	if err := os.Remove(filepath.Join(root, hostBinDir, "talent")); err != nil {
		t.Fatal(err)
	}
	misspelt := strings.Replace(readFile(t, systemdDir+"/"+unitName("gateway")), "ProtectHome=yes", "ProtectHomes=yes", 1)
	if err := os.WriteFile(filepath.Join(root, hostUnitDir, unitName("gateway")), []byte(misspelt), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run("verify", "--root="+root, "--man=no", "--generators=no", hostUnitDir+"/"+unitName("talent"), hostUnitDir+"/"+unitName("gateway"))
	for _, want := range []string{hostBinDir + "/talent", "ProtectHomes"} {
		if !strings.Contains(out, want) {
			t.Errorf("systemd-analyze verify did not report %s on a broken host (err %v):\n%s", want, err, out)
		}
	}
}

// TestSystemdREADME: README.md's "Running a node on a real host"
// installs what the units expect where they expect it: every unit, the
// environment file, the binaries of every process (built from their main
// packages) and the data and token directories.
func TestSystemdREADME(t *testing.T) {
	_, section, ok := strings.Cut(readFile(t, "README.md"), "\n## Running a node on a real host\n")
	if !ok {
		t.Fatal(`README.md has no "## Running a node on a real host" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	want := []string{
		"install -m 0644 -t " + hostUnitDir + " " + systemdDir + "/parkmesh-*.service " + systemdDir + "/" + nodeTarget,
		"install -m 0600 " + envTemplate + " " + hostEnvFile,
		"install -D -m 0755 -t " + hostBinDir,
		"install -d -o parkmesh -g parkmesh -m 0750 " + hostDataDir,
		"--data-dir " + hostDataDir,
		hostTokenDir + "/",
		"systemctl enable --now " + nodeTarget,
		"/readyz",
		"journalctl -u parkmesh-gateway",
		"docs/deploy.md, Consul ACLs",
	}
	for process, main := range systemdProcesses {
		want = append(want, "./"+main, "bin/"+process)
	}
	for _, w := range want {
		if !strings.Contains(section, w) {
			t.Errorf("README.md, Running a node on a real host: no %q", w)
		}
	}
}
