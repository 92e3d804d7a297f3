# ParkMesh: the two commands are `make demo` and `make test` (README.md).
SHELL := /bin/bash
GO ?= go
CACHE ?= $(HOME)/.cache/parkmesh
FUZZTIME ?= 8s
export PARKMESH_CACHE := $(CACHE)

.PHONY: all build demo test vet fmt-check openapi-lint unit fuzz bench tools clean

all: build

## tools: build and cache the real Consul agent and Jaeger the tests and demo need
tools:
	@deploy/tools/install-consul.sh >/dev/null
	@deploy/tools/install-jaeger.sh >/dev/null

build:
	$(GO) build ./...

## demo: three parks on this machine, each with its Consul, services and gateway
demo:
	@deploy/tools/install-consul.sh >/dev/null
	@deploy/tools/install-jaeger.sh >/dev/null || echo "make demo: Jaeger could not be built here; the demo runs without a trace backend"
	$(GO) build -o .parkmesh/bin/demo ./deploy/local/cmd/demo
	.parkmesh/bin/demo

## test: vet, formatting, the OpenAPI lint, the whole suite with the race detector, brief fuzzing
test: tools fmt-check vet openapi-lint unit fuzz

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## openapi-lint: lint the gateway's wire contract with Redocly (redocly.yaml; installed and cached by deploy/tools)
openapi-lint:
	@redocly=$$(deploy/tools/install-redocly.sh) && \
		REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true "$$redocly" lint gateway/openapi/openapi.yaml

unit:
	PARKMESH_CONSUL_BIN=$$(deploy/tools/install-consul.sh) PARKMESH_JAEGER_BIN=$$(deploy/tools/install-jaeger.sh) \
		$(GO) test -race -count=1 -timeout 30m ./...

# Each fuzz target runs briefly; a finding fails the build and is saved
# under testdata/fuzz as a regression seed.
FUZZ_TARGETS := ./pkg/listing/:FuzzDecodeValidate ./pkg/parktoken/:FuzzVerify \
	./pkg/parktoken/:FuzzFederationVerify ./gateway/:FuzzDecodeFederationSearch
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

## bench: search benchmarks at 100,000 listings (see docs/benchmarks.md)
bench:
	$(GO) test -run='^$$' -bench='BenchmarkSearch' -benchtime=200x -count=5 ./pkg/sqlitestore/

clean:
	rm -rf .parkmesh/bin
