package jaegerserver_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/parkmesh/parkmesh/deploy/testenv/jaegerserver"
	"github.com/parkmesh/parkmesh/deploy/testenv/localproc"
)

func TestEnvPlacesEveryListener(t *testing.T) {
	t.Parallel()
	got := jaegerserver.Options{OTLPGRPCPort: 1, OTLPHTTPPort: 2, QueryHTTPPort: 3, QueryGRPCPort: 4, HealthPort: 5}.Env()
	for _, want := range []string{
		"PARKMESH_JAEGER_OTLP_GRPC_ADDR=127.0.0.1:1",
		"PARKMESH_JAEGER_OTLP_HTTP_ADDR=127.0.0.1:2",
		"PARKMESH_JAEGER_QUERY_HTTP_ADDR=127.0.0.1:3",
		"PARKMESH_JAEGER_QUERY_GRPC_ADDR=127.0.0.1:4",
		"PARKMESH_JAEGER_HEALTH_ADDR=127.0.0.1:5",
		"PARKMESH_JAEGER_LOG_LEVEL=info",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("Env() = %v, missing %s", got, want)
		}
	}
}

// Every variable Env sets is one the shipped configuration reads, so a
// renamed variable cannot silently leave Jaeger on its default port.
func TestConfigReadsEveryVariable(t *testing.T) {
	t.Parallel()
	root, err := localproc.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(root, jaegerserver.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range (jaegerserver.Options{}).Env() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.Contains(string(cfg), "${env:"+name+":-") {
			t.Errorf("%s does not read %s", jaegerserver.ConfigFile, name)
		}
	}
}

func TestLaunchValidates(t *testing.T) {
	t.Parallel()
	ports := func(o jaegerserver.Options) jaegerserver.Options {
		o.OTLPGRPCPort, o.OTLPHTTPPort, o.QueryHTTPPort, o.QueryGRPCPort, o.HealthPort = 1, 2, 3, 4, 5
		return o
	}
	tests := []struct {
		name string
		opts jaegerserver.Options
		want string
	}{
		{"no binary", ports(jaegerserver.Options{}), "Bin is empty"},
		{"no port", jaegerserver.Options{Bin: "/bin/true"}, "not a TCP port"},
		{"missing config", ports(jaegerserver.Options{Bin: "/bin/true", ConfigPath: "/nonexistent.yaml"}), "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jaegerserver.Launch(t.Context(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Launch error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLaunchRefusesATakenPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken, _ := strconv.Atoi(strings.TrimPrefix(l.Addr().String(), "127.0.0.1:"))
	_, err = jaegerserver.Launch(t.Context(), jaegerserver.Options{
		Bin: "/bin/true", OTLPGRPCPort: taken, OTLPHTTPPort: 1, QueryHTTPPort: 1, QueryGRPCPort: 1, HealthPort: 1,
	})
	if !errors.Is(err, jaegerserver.ErrPortInUse) {
		t.Fatalf("Launch error = %v, want port in use", err)
	}
}

// TestRestartAfterACrash: a Jaeger killed as a crash would is launched
// again on the same ports, as a new process appending to the same log.
func TestRestartAfterACrash(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("short: starts a real Jaeger")
	}
	bin, err := jaegerserver.FindBinary(t.Context(), os.Stderr)
	if err != nil {
		t.Fatalf("no Jaeger binary: %v", err)
	}
	logPath := filepath.Join(t.TempDir(), "jaeger.log")
	j, err := jaegerserver.LaunchOnFreePorts(t.Context(), jaegerserver.Options{
		Bin: bin, RunOptions: localproc.RunOptions{LogPath: logPath, KillWithParent: true},
	}, nil, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Kill() })
	old := j.PID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-j.Done()
	if j.Stopped() || j.Err() == nil {
		t.Fatalf("after SIGKILL: Stopped() %v, Err() %v; want a crash", j.Stopped(), j.Err())
	}
	nj, err := j.Restart(t.Context())
	if err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Cleanup(func() { _ = nj.Kill() })
	if nj.PID() == old || nj.QueryURL() != j.QueryURL() || nj.OTLPHTTPAddr() != j.OTLPHTTPAddr() {
		t.Errorf("restarted: pid %d (was %d), %s %s; want a new pid on %s %s", nj.PID(), old, nj.QueryURL(), nj.OTLPHTTPAddr(), j.QueryURL(), j.OTLPHTTPAddr())
	}
	if _, err := nj.Services(t.Context()); err != nil {
		t.Errorf("restarted Jaeger's query API: %v", err)
	}
	if b, _ := os.ReadFile(logPath); strings.Count(string(b), "==> parkmesh launcher") != 2 {
		t.Errorf("log %s does not hold both starts:\n%s", logPath, b)
	}
}
