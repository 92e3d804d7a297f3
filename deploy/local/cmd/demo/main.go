// Command demo is what `make demo` runs: three parks on this machine, each
// with its own Consul agent (ACLs on, state on disk), its three services
// and its gateway, loaded with the park's sample data. The parks start as
// soon as Consul is there; Jaeger is built (the first time) and started in
// the background, and traces flow once it is up. A crashed service,
// gateway, Consul agent or Jaeger is started again with backoff. It runs in the foreground; SIGINT
// or SIGTERM stops every process it started, gateways first, Consul last.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/parkmesh/parkmesh/deploy/local"
)

func main() {
	var cfg local.Config
	flag.StringVar(&cfg.Root, "root", ".parkmesh", "directory for binaries, data, logs and demo.json")
	flag.IntVar(&cfg.GatewayBasePort, "gateway-port", 8081, "port of the first park's gateway; the others follow")
	flag.IntVar(&cfg.ServiceBasePort, "service-port", 7100, "base of the services' ports (park i uses base+10i+1..3)")
	flag.IntVar(&cfg.ConsulBasePort, "consul-port", 18500, "base of the Consul agents' ports (park i uses base+10i..+3)")
	jaeger := flag.Int("jaeger-port", 16686, "Jaeger's query port (its gRPC twin one below; 0: no Jaeger)")
	otlp := flag.Int("jaeger-otlp-port", 4317, "Jaeger's OTLP gRPC port; OTLP HTTP, which the demo's processes use, one above")
	health := flag.Int("jaeger-health-port", 13133, "Jaeger's health port")
	flag.StringVar(&cfg.JaegerInstall, "jaeger-install", os.Getenv("PARKMESH_JAEGER_INSTALL"),
		"command printing the Jaeger binary's path, run in the background (env PARKMESH_JAEGER_INSTALL; default: PARKMESH_JAEGER_BIN, else deploy/tools/install-jaeger.sh)")
	flag.Parse()
	if *jaeger > 0 {
		cfg.JaegerPorts = []int{*jaeger, *jaeger - 1, *otlp, *otlp + 1, *health}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := local.Demo(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}
