# nbh-sync — make help lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN := bin/nbh-sync
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Tests never read the developer's git configuration.
export GIT_CONFIG_GLOBAL := /dev/null
export GIT_CONFIG_NOSYSTEM := 1

# make run: the daemon on examples/ (its committed state), dashboard on
# localhost, the students' front door beside it.
RUN_ROOT ?= $(CURDIR)/.run
LISTEN ?= 127.0.0.1:8787
PROXY_LISTEN ?= 127.0.0.1:8788
# The demo's images build FROM this Jupyter image, made from Debian packages
# with no registry (testimages/jupyter/build.sh).
RUN_BASE ?= nbhtest-jupyter2:latest

# make test-podman: podman's Docker-compatible API (.ci/run starts one).
NBH_PODMAN_HOST ?= unix:///run/nbhtest-podman.sock
# The packages whose tests drive an engine, run again on podman: its engine
# API (lists, builds, mounts, port mapping) is what differs. Not
# internal/jupytertest: it checks Jupyter's own activity semantics, which
# no engine changes.
ENGINE_PKGS := ./site/... ./reconcile/... ./images/... ./activity/... ./containers/...
# The packages with the longest tests start first: go test starts test
# binaries in the order it is given them (./... adds the rest once).
SLOW_FIRST := ./daemon ./site ./reconcile ./containers ./proxy ./images
# The tests mostly wait (on engines, Jupyter servers, a browser), so more
# test binaries (-p) run at once than there are cores (go test's default);
# -parallel bounds the t.Parallel tests of each. At -p 8 -parallel 4, with
# make test-podman and make e2e beside it on a shared 2-core machine, the
# engine's builds and the race-built daemons starved (local git fetches
# past their minute): hence 4 and 2. GOTESTFLAGS adds flags (.ci/run: -json).
# The -timeouts (60m) are far above what a run takes (make e2e: 10-13 min on a
# quiet 2-core machine), for a starved one: a timeout kills a test binary
# before its clean-ups, and leaves what it made on the shared engine.
TEST_P ?= 4
TEST_PARALLEL ?= 2
# On podman (4.3) an image listing fails ("reading image …: image not
# known") when another test removes an image meanwhile: one test at a time
# in each package there, as before.
TEST_PARALLEL_PODMAN ?= 1
GOTESTFLAGS ?=
GOTEST = $(GO) test -race -count=1 -p $(TEST_P) -parallel $(TEST_PARALLEL) $(GOTESTFLAGS)

.PHONY: help build test test-podman lint verify run bench e2e fuzz image clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' -v listen='$(LISTEN)' -v proxy='$(PROXY_LISTEN)' \
		'{ gsub(/\$$\(LISTEN\)/, listen, $$2); gsub(/\$$\(PROXY_LISTEN\)/, proxy, $$2); printf "  %-11s %s\n", $$1, $$2 }'

build: ## build bin/nbh-sync, version stamped
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/nbh-sync

test: ## unit and integration tests, race detector on (needs the Docker engine)
	$(GOTEST) -timeout 60m $(SLOW_FIRST) ./...

test-podman: TEST_PARALLEL = $(TEST_PARALLEL_PODMAN)
test-podman: ## the engine tests again, against podman's API at NBH_PODMAN_HOST (fixtures imported there)
	DOCKER_HOST=$(NBH_PODMAN_HOST) NBH_REQUIRE_PODMAN=1 $(GOTEST) -timeout 60m $(ENGINE_PKGS)

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

verify: ## gofmt and go mod tidy leave no diff
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: run gofmt -w on the files above'; exit 1; }
	$(GO) mod tidy
	@git diff --exit-code go.mod go.sum || { echo 'go mod tidy changed go.mod/go.sum: commit the result'; exit 1; }

run: build ## the demo site of examples/: dashboard on http://$(LISTEN), front door on http://$(PROXY_LISTEN)
	@if docker image inspect $(RUN_BASE) >/dev/null 2>&1; then \
		echo "make run: base image $(RUN_BASE) (Debian trixie, jupyter_server 2.15, built by testimages/jupyter/build.sh --gen 2)"; \
	else \
		echo "make run: base image $(RUN_BASE) missing: building it once from Debian packages (about 1 min with a warm mirror, up to 10 on a busy machine; needs root, mmdebstrap and a Debian mirror)"; \
		bash testimages/jupyter/build.sh --gen 2; \
	fi
	@mkdir -p $(RUN_ROOT)
	@# The demo's API token: made here, for this machine only.
	@test -s $(RUN_ROOT)/api-token || (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=' > $(RUN_ROOT)/api-token)
	@echo "make run: open http://$(LISTEN)/ and click \"Open a demo student\" on a course (the demo credential of --demo, on this machine only)"
	$(BIN) run --config examples --root $(RUN_ROOT) --api-token-file $(RUN_ROOT)/api-token --listen $(LISTEN) --proxy-listen $(PROXY_LISTEN) --demo

image: build ## the daemon's own image, nbh-sync:latest (see Dockerfile)
	cp /etc/ssl/certs/ca-certificates.crt bin/
	docker build -t nbh-sync:$(VERSION) -t nbh-sync:latest .

bench: ## every performance figure, side by side with its baseline (see bench/README.md)
	bash bench/run.sh

e2e: ## end-to-end: the daemon as a process, real engine, real Jupyter (bash testimages/jupyter/build.sh first)
	$(GOTEST) -tags e2e -timeout 60m ./e2e/...

fuzz: ## fuzz the courses.yaml parser for FUZZTIME (default 60s)
	$(GO) test ./manifest -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-60s}

clean: ## remove build output
	rm -rf bin .run
