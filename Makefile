# sandboxd: `make run` builds and starts a demo, `make test` runs every test.
# Both install what is missing on a fresh Debian 12 machine (as root).

GO        ?= go
# urfave_cli_no_docs leaves out the CLI's man-page generator (unused), whose
# markdown parser every sandbox's init would otherwise initialize.
TAGS      := seccomp netgo osusergo urfave_cli_no_docs
# A fully static binary: libcontainer re-executes it inside sandboxes whose
# root has no libc, and the cgroup v2 harness boots it in a bare VM.
LDFLAGS   := -linkmode external -extldflags -static -s -w
CACHE     := .cache
ROOTFS    := $(CACHE)/rootfs/busybox
TESTROOT  := $(CACHE)/rootfs/busybox-test
PROBE     := $(CACHE)/probe
# Hostile programs of the adversarial suite (test/attacks), one per C file.
ATTACKS   := $(patsubst testdata/attacks/%.c,$(CACHE)/attacks/%,$(wildcard testdata/attacks/*.c))
APT_DEPS  := gcc libc6-dev make pkg-config libseccomp-dev busybox-static curl
BIN       := bin/sandboxd
# What only the tests need: python3 for the Python SDK's suite (test/sdk);
# Node and npm for the MCP client (test/mcp), the TypeScript SDK and
# piston-client, installed only when missing as commands: NodeSource's
# nodejs bundles npm, and Debian's npm package would conflict with it.
TEST_APT_DEPS := python3
GOFILES   := $(shell find . \( -name '*.go' -o -name '*.c' -o -name '*.h' \) -not -path './.cache/*' -not -path './sdk/*') go.mod go.sum

.PHONY: all deps build rootfs images test test-cgroup2 test-online run bench bench-interactive bench-exec bench-langs bench-sessions bench-stream bench-egress clean fuzz soak \
	image image-push images-oci test-container

all: build

deps:
	@scripts/deps.sh $(APT_DEPS)
	@command -v $(GO) >/dev/null || { echo "Go is required (https://go.dev/dl)"; exit 1; }
	@$(GO) mod download

build: deps $(BIN)

$(BIN): $(GOFILES)
	CGO_ENABLED=1 $(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $@ ./cmd/sandboxd

$(PROBE): testdata/probe/probe.c
	@mkdir -p $(CACHE)
	gcc -static -O2 -pthread -o $@ $<

$(CACHE)/attacks/%: testdata/attacks/%.c
	@mkdir -p $(dir $@)
	gcc -static -O2 -pthread -o $@ $<

$(ROOTFS): scripts/mkrootfs-busybox.sh
	@mkdir -p $(dir $@)
	scripts/mkrootfs-busybox.sh $@

$(TESTROOT): scripts/mkrootfs-busybox.sh $(PROBE) $(ATTACKS)
	@mkdir -p $(dir $@)
	scripts/mkrootfs-busybox.sh $@ $(PROBE) $(ATTACKS)

rootfs: deps $(ROOTFS)

# Everything: unit tests, real sandboxes, the daemon, every language, the
# cgroup v2 VM, fuzz and a short soak. The language images are built (or
# found up to date in IMAGE_CACHE) in the background while the packages
# that need none run; scripts/test.sh says the order. IMAGE_TESTS are the
# packages that import language images: they run once the images are in.
IMAGE_TESTS := ./test/languages/ ./test/judge/ ./test/compat/ ./test/mcp/ ./test/sdk/
# LATE_TESTS need no image but may wait for their build (test/daemon's
# README quick start runs `make run`): they run last before IMAGE_TESTS.
LATE_TESTS := ./test/daemon/

test: deps $(BIN) $(TESTROOT)
	@scripts/deps.sh $(TEST_APT_DEPS) mmdebstrap $(CG2_APT_DEPS)
	@{ command -v node && command -v npm; } >/dev/null || scripts/deps.sh nodejs npm
	@GO="$(GO)" TAGS="$(TAGS)" BIN="$(BIN)" TESTROOT="$(TESTROOT)" IMAGE_CACHE="$(IMAGE_CACHE)" \
		IMAGE_JOBS="$(IMAGE_JOBS)" IMAGE_TESTS="$(IMAGE_TESTS)" LATE_TESTS="$(LATE_TESTS)" MAKE="$(MAKE)" scripts/test.sh

# Every fuzz target for a fixed number of executions (their seed corpora,
# testdata/fuzz/, also run in plain `go test`). Counts, not durations: a
# duration-based -fuzztime races Go's fuzz coordinator at the deadline and
# fails with a bare "context deadline exceeded" and no crasher
# (golang/go#75804). Each count is about 5 s on the 2-core CI machine;
# FUZZMULT scales them all (`make fuzz FUZZMULT=20` for a longer search).
FUZZMULT    ?= 1
FUZZTARGETS := server:FuzzExecuteRequest:120000 server:FuzzResolveLimits:150000 \
	server:FuzzDecodeFiles:150000 images:FuzzImportRootfs:5000 \
	internal/units:FuzzParseSize:400000 internal/units:FuzzParseDuration:400000 \
	config:FuzzOverlay:200000 config:FuzzLoadResolve:30000

fuzz:
	@set -e; for t in $(FUZZTARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$$(( $${rest#*:} * $(FUZZMULT) )); \
		echo "fuzz $$pkg $$name ($${n} execs)"; \
		out=$$($(GO) test -tags "$(TAGS)" -run '^$$' -fuzz "^$$name$$" -fuzztime $${n}x -timeout 10m ./$$pkg/ 2>&1) || { echo "$$out"; exit 1; }; \
		echo "$$out" | tail -1; \
	done

# The soak benchmark (not a CI test; `make test` runs a short one): 10,000
# sequential and 1,000 concurrent runs of mixed outcomes against a real
# daemon; RSS, fds, threads, goroutines before and after, leaks, failures.
# The gcc image's rootfs, for the soak's compile errors.
GCC_ROOTFS = $$(SANDBOXD_IMAGE_CACHE=$(IMAGE_CACHE) scripts/build-images.sh --list | awk '$$1=="gcc"{print $$4}')

soak: deps $(BIN) $(TESTROOT) images
	$(GO) run ./bench/soak -bin $(BIN) -rootfs $(TESTROOT) -seq 10000 -conc 1000 -gcc-rootfs "$(GCC_ROOTFS)"

# The cgroup v2 path, proven in a qemu VM (TCG) booted with cgroup_no_v1=all
# on Debian 12's kernel, fetched once through apt into $(CG2_CACHE).
# Outside the checkout, so that every clone on this machine reuses the kernel.
CG2_CACHE    ?= /var/cache/sandboxd/cgroup2
CG2_APT_DEPS := qemu-system-x86 busybox-static

test-cgroup2: deps $(BIN) $(TESTROOT)
	@scripts/deps.sh $(CG2_APT_DEPS)
	GO=$(GO) TAGS="$(TAGS)" CACHE_DIR=$(CG2_CACHE) scripts/test-cgroup2.sh $(BIN) $(TESTROOT)

# The language images (images/recipes/), built with mmdebstrap from the
# machine's Debian mirror into IMAGE_CACHE, outside the checkout so that
# every clone on this machine reuses them; a recipe is rebuilt only when it
# (or the builder) changes. LANG_IMAGES picks recipes (default: all).
IMAGE_CACHE ?= /var/cache/sandboxd/images
LANG_IMAGES ?=
IMAGE_JOBS  ?= 2

images:
	@scripts/deps.sh mmdebstrap
	@SANDBOXD_IMAGE_CACHE=$(IMAGE_CACHE) JOBS=$(IMAGE_JOBS) scripts/build-images.sh $(LANG_IMAGES)

run: deps $(BIN) $(ROOTFS) images
	@SANDBOXD_IMAGE_CACHE=$(IMAGE_CACHE) scripts/run-daemon.sh $(BIN) $(ROOTFS)

# Tests that need the outside world (the npm registry), never part of
# `make test`: a real npm install through the egress proxy.
test-online: deps $(BIN) $(TESTROOT) images
	SANDBOXD_BIN=$(CURDIR)/$(BIN) SANDBOXD_ROOTFS=$(CURDIR)/$(TESTROOT) SANDBOXD_IMAGE_CACHE=$(IMAGE_CACHE) \
		$(GO) test -tags "$(TAGS) online" -count=1 -run Online -v ./test/languages/

bench-exec: deps $(BIN) $(ROOTFS)
	$(GO) run ./bench/exec -bin $(BIN) -rootfs $(ROOTFS) -n 200

# `make bench-langs`: hello world per language through the API, beside the
# same program run bare on the host; writes docs/benchmarks-languages.md.
bench-langs: deps $(BIN) images
	SANDBOXD_IMAGE_CACHE=$(IMAGE_CACHE) $(GO) run ./bench/langs -bin $(BIN) -n 20

# `make bench-sessions`: session sandboxes through the API (exec in an
# existing sandbox beside a one-shot run, create, a 1 MiB PUT+GET, 200 idle
# sessions of 20 users and their memory). `make bench` appends its figures
# to docs/benchmarks.md (SESSIONS_OUT).
SESSIONS_OUT ?=
bench-sessions: deps $(BIN) $(TESTROOT)
	@out=$$($(GO) run ./bench/sessions -bin $(BIN) -rootfs $(TESTROOT) -n $(BENCH_N) -hold 200) || exit 1; \
	echo "$$out"; \
	if [ -n "$(SESSIONS_OUT)" ]; then \
		printf '\n## Session sandboxes (`make bench-sessions`)\n\n```\n%s\n```\n' "$$out" >> "$(SESSIONS_OUT)"; \
	fi

# `make bench` compares sandboxd with runc, crun, docker, bubblewrap and a
# plain fork+exec in one run (N runs each), times a C program against 100
# tests in one language-mode request (N/10 requests, the gcc image), puts
# issue 16's ratios and targets beside the figures and writes
# docs/benchmarks.md.
# It installs the other runners from Debian and starts dockerd if needed.
BENCH_N        ?= 200
BENCH_OUT      ?= docs/benchmarks.md
BENCH_APT_DEPS := docker.io runc crun bubblewrap
bench: deps $(BIN) $(ROOTFS) images
	@scripts/deps.sh $(BENCH_APT_DEPS) || echo "bench: could not install $(BENCH_APT_DEPS); those runners are reported as not runnable"
	@scripts/start-dockerd.sh || echo "bench: no Docker engine; docker is reported as not runnable"
	$(GO) run ./bench/compare -bin $(BIN) -rootfs $(ROOTFS) -n $(BENCH_N) -out "$(BENCH_OUT)" -gcc-rootfs "$(GCC_ROOTFS)" \
		-python-rootfs "$$(SANDBOXD_IMAGE_CACHE=$(IMAGE_CACHE) scripts/build-images.sh --list | awk '$$1=="python"{print $$4}')"
	$(MAKE) bench-sessions SESSIONS_OUT="$(BENCH_OUT)"
	$(MAKE) bench-stream STREAM_OUT="$(BENCH_OUT)" STREAM_N=$$(( $(BENCH_N) * 10 ))
	$(MAKE) bench-egress EGRESS_OUT="$(BENCH_OUT)" EGRESS_N=$$(( $(BENCH_N) * 5 ))

# `make bench-interactive`: the interactive row of `make bench` alone (a C
# program and a C interactor, 100,000 round trips, beside the host's pipes).
bench-interactive: deps $(BIN) images
	$(GO) run ./bench/compare -bin $(BIN) -only-interactive -gcc-rootfs "$(GCC_ROOTFS)"

# `make bench-stream`: one line's round trip through a WebSocket to cat, a
# 16 MB stdout flood through NDJSON, and the daemon's RSS while 100
# WebSocket runs flood slow clients. `make bench` appends its figures to
# docs/benchmarks.md (STREAM_OUT).
STREAM_N ?= 2000
bench-stream: deps $(BIN) $(TESTROOT)
	@out=$$($(GO) run ./bench/stream -bin $(BIN) -rootfs $(TESTROOT) -n $(STREAM_N) -clients 100) || exit 1; \
	echo "$$out"; \
	if [ -n "$(STREAM_OUT)" ]; then \
		printf '\n## Streaming and interactive runs (`make bench-stream`)\n\n```\n%s\n```\n' "$$out" >> "$(STREAM_OUT)"; \
	fi

# `make bench-egress`: one download into a sandbox through the egress
# proxy beside the same download on the host, and the time the proxy adds
# to a new connection. `make bench` appends its figures (EGRESS_OUT).
EGRESS_N ?= 1000
bench-egress: deps $(BIN) $(TESTROOT)
	@out=$$($(GO) run ./bench/egress -bin $(BIN) -rootfs $(TESTROOT) -n $(EGRESS_N)) || exit 1; \
	echo "$$out"; \
	if [ -n "$(EGRESS_OUT)" ]; then \
		printf '\n## Network egress (`make bench-egress`)\n\n```\n%s\n```\n' "$$out" >> "$(EGRESS_OUT)"; \
	fi

# `make image`: sandboxd's OCI image, built without Docker by
# cmd/sandboxd-image (go-containerregistry): the static binary, the busybox
# rootfs, the language catalog, deploy/docker's configuration and
# entrypoint. An OCI layout and a `docker load`-able tarball under
# IMAGE_OUT. `make image-push REGISTRY=host[:port][/path]` pushes it;
# `make images-oci` exports the language images (make images) as one OCI
# layout, and pushes them too when REGISTRY is given. docs/deploy.md.
# The image is named in one place: `make image` tags it and
# deploy/kubernetes names it (test/cluster checks that they agree).
IMAGE_NAME    ?= sandboxd
IMAGE_TAG     ?= dev
IMAGE_OUT     ?= $(CACHE)/image
LANG_OCI_OUT  ?= $(CACHE)/images-oci
REGISTRY      ?=
IMAGE_TOOL    := $(GO) run ./cmd/sandboxd-image

image: deps $(BIN) $(ROOTFS)
	$(IMAGE_TOOL) self -binary $(BIN) -rootfs $(ROOTFS) -tag $(IMAGE_NAME):$(IMAGE_TAG) -layout $(IMAGE_OUT)/oci -tarball $(IMAGE_OUT)/sandboxd.tar

image-push: image
	@test -n "$(REGISTRY)" || { echo "image-push: REGISTRY=host[:port][/path] is required"; exit 1; }
	$(IMAGE_TOOL) push -layout $(IMAGE_OUT)/oci -registry $(REGISTRY)

images-oci: images
	SANDBOXD_IMAGE_CACHE=$(IMAGE_CACHE) scripts/build-images.sh --list $(LANG_IMAGES) | $(IMAGE_TOOL) languages -layout $(LANG_OCI_OUT)
	@if [ -n "$(REGISTRY)" ]; then $(IMAGE_TOOL) push -layout $(LANG_OCI_OUT) -registry $(REGISTRY); fi

# `make test-container`: the image under Docker with the smallest set of
# privileges (deploy/docker/run.go, not --privileged): every status, the
# isolation evidence, a session, a refused start, nothing left on the host
# (test/container, build tag "container"). Not part of `make test`.
test-container: image $(TESTROOT)
	@scripts/deps.sh docker.io
	@scripts/start-dockerd.sh
	SANDBOXD_CONTAINER_IMAGE=$(CURDIR)/$(IMAGE_OUT)/sandboxd.tar SANDBOXD_ROOTFS=$(CURDIR)/$(TESTROOT) \
		$(GO) test -tags "$(TAGS) container" -count=1 -v -timeout 10m ./test/container/

clean:
	rm -rf bin $(CACHE)

.PHONY: image-ref
image-ref:
	@echo $(IMAGE_NAME):$(IMAGE_TAG)

# `make install` puts the binary, the systemd units (sandboxd.service,
# sandboxd.socket), the sysusers.d entry for group sandboxd and a sample
# configuration (an existing one is kept) under DESTDIR and PREFIX.
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR  ?= /etc

.PHONY: install
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/sandboxd
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/sandboxd
	sed -e 's|/usr/local/bin/sandboxd|$(BINDIR)/sandboxd|' -e 's|/etc/sandboxd/|$(SYSCONFDIR)/sandboxd/|' \
		contrib/systemd/sandboxd.service > $(DESTDIR)$(UNITDIR)/sandboxd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sandboxd.service
	install -m 0644 contrib/systemd/sandboxd.socket $(DESTDIR)$(UNITDIR)/sandboxd.socket
	install -m 0644 contrib/systemd/sandboxd.sysusers $(DESTDIR)$(SYSUSERSDIR)/sandboxd.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/sandboxd/sandboxd.toml || \
		install -m 0640 contrib/sandboxd.toml $(DESTDIR)$(SYSCONFDIR)/sandboxd/sandboxd.toml
