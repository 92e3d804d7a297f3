# ParkMesh: the two commands are `make demo` and `make test` (README.md).
SHELL := /bin/bash
GO ?= go
CACHE ?= $(HOME)/.cache/parkmesh
# An execution count, not a duration: with a duration, Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" at
# the deadline under CPU load (golang/go#75804, fixed in Go 1.27); a count
# has no deadline to race. About 5-10 s per target here.
FUZZTIME ?= 150000x
export PARKMESH_CACHE := $(CACHE)

.PHONY: all build demo test short vet fmt-check tidy-check staticcheck configcheck openapi-lint unit fuzz bench tools clean

# Modules of the repository: the product, and the deployment config checks
# (a module of their own so their dependencies stay out of the product's).
CONFIGCHECK := deploy/configcheck

all: build

## tools: build and cache the real Consul agent and Jaeger the tests and demo
## need, and the pinned staticcheck; install systemd-analyze (Debian's
## systemd package) for configcheck's unit checks, and Debian's chromium
## with a CJK font for the portal's browser tests, when they are missing
tools:
	@deploy/tools/install-consul.sh >/dev/null
	@deploy/tools/install-jaeger.sh >/dev/null
	@deploy/tools/install-staticcheck.sh >/dev/null
	@deploy/tools/install-systemd-analyze.sh >/dev/null
	@deploy/tools/install-chromium.sh >/dev/null

build:
	$(GO) build ./...

## demo: three parks on this machine, each with its Consul, services and gateway
## (Jaeger is built, the first time, and started in the background by the demo
## itself: the parks do not wait for it)
demo:
	@deploy/tools/install-consul.sh >/dev/null
	$(GO) build -o .parkmesh/bin/demo ./deploy/local/cmd/demo
	.parkmesh/bin/demo

## test: vet, formatting, go.mod tidiness, staticcheck, the OpenAPI lint,
## the deployment config checks, the whole suite with the race detector,
## brief fuzzing
test: tools fmt-check vet tidy-check staticcheck openapi-lint configcheck unit fuzz

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd $(CONFIGCHECK) && $(GO) vet ./...

## tidy-check: go.mod and go.sum are what `go mod tidy` would make them
tidy-check:
	$(GO) mod tidy -diff
	cd $(CONFIGCHECK) && $(GO) mod tidy -diff

## staticcheck: the pinned staticcheck (deploy/tools/install-staticcheck.sh)
staticcheck:
	@sc=$$(deploy/tools/install-staticcheck.sh) || exit 1; rc=0; \
	$$sc ./... || rc=1; \
	(cd $(CONFIGCHECK) && $$sc ./...) || rc=1; \
	exit $$rc

## configcheck: the compose file, Dockerfiles, kustomize overlays, Tiltfile,
## systemd units and flag docs, without a container engine or cluster
## (needs kubectl, and systemd-analyze from `make tools`)
configcheck:
	cd $(CONFIGCHECK) && $(GO) test -count=1 ./...

## openapi-lint: lint the gateway's wire contract with Redocly (gateway/openapi/redocly.yaml; installed and cached by deploy/tools)
openapi-lint:
	@redocly=$$(deploy/tools/install-redocly.sh) && \
		REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true "$$redocly" lint --config gateway/openapi/redocly.yaml gateway

unit:
	PARKMESH_CONSUL_BIN=$$(deploy/tools/install-consul.sh) PARKMESH_JAEGER_BIN=$$(deploy/tools/install-jaeger.sh) \
		PARKMESH_CHROMIUM_BIN=$$(deploy/tools/install-chromium.sh) \
		$(GO) test -race -count=1 -timeout 30m ./...

# Each fuzz target runs briefly; a finding fails the build and is saved
# under testdata/fuzz as a regression seed.
FUZZ_TARGETS := ./pkg/listing/:FuzzDecodeValidate ./pkg/parktoken/:FuzzVerify \
	./pkg/parktoken/:FuzzFederationVerify ./pkg/parktoken/:FuzzVerifyClaims \
	./gateway/clubsearch/:FuzzDecodeFederationSearch
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

## short: the quick local loop — pure-logic tests only, no Consul, no
## processes (make test still runs everything)
short:
	$(GO) test -short -count=1 ./...

## bench: search benchmarks at 100,000 listings (see docs/benchmarks.md)
bench:
	$(GO) test -run='^$$' -bench='BenchmarkSearch' -benchtime=200x -count=5 ./pkg/sqlitestore/

clean:
	rm -rf .parkmesh/bin
