# Switchboard - top-level entry points. `make run` and `make test` install
# what they need from Debian's packages (idempotent), configure and build.

DEBIAN_PACKAGES := build-essential cmake pkg-config clang libclang-rt-14-dev \
	libuv1-dev libhttp-parser-dev libwslay-dev libjansson-dev libsodium-dev \
	libinih-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev libcmocka-dev \
	libpcre2-dev libutf8proc-dev libexttextcat-dev tzdata \
	python3 python3-yaml sqlite3 openssl curl strace chromium fonts-noto-color-emoji \
	libre-dev librem-dev sip-tester baresip-core espeak-ng sox

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_TYPE ?= RelWithDebInfo
CONFIG ?= config/demo.ini

.PHONY: all deps node-deps web build build-asan prompts run test bench bench-voice clean format checksrc screenshots

all: build

deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Node.js for the browser tests: Debian's nodejs + npm unless a node is on PATH.
node-deps:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; }
	@[ tests/e2e/node_modules/.package-lock.json -nt tests/e2e/package-lock.json ] || \
		(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

# The browser workspace: npm ci (when the lock file changed) and a build
# (when a source is newer than it) into web/dist, which the daemon serves.
web: node-deps
	@[ web/node_modules/.package-lock.json -nt web/package-lock.json ] || \
		(cd web && npm ci --no-audit --no-fund --loglevel=error)
	@if [ ! -f web/dist/index.html ] || [ -n "$$(find web/src web/build.mjs web/package-lock.json -newer web/dist/index.html 2>/dev/null | head -1)" ]; then \
		cd web && npm run build --silent; fi

build: deps web
	cmake -S . -B build -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	cmake --build build -j$(JOBS)

# Sanitizer build: clang with ASan + UBSan; also builds the libFuzzer targets.
build-asan: deps
	CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSB_SANITIZE=ON -DSB_FUZZ=ON >/dev/null
	cmake --build build-asan -j$(JOBS)

# Voice prompts (RU/EN, 8 kHz mono WAV) into build/prompts; `build` makes them
# too (CMake target `prompts`, part of ALL); idempotent.
prompts: build
	cmake --build build --target prompts

run: build prompts
	./build/switchboard serve --config $(CONFIG)

test: node-deps build build-asan prompts
	scripts/test.sh build build-asan

screenshots: node-deps build
	SB_BINARY=build/switchboard SB_SCREENSHOTS=$(CURDIR)/docs/screenshots node --test tests/e2e/

bench: node-deps build
	cmake --build build -j$(JOBS) --target bench_ingest bench_fanout
	bench/run.sh

# The voice benchmark (SIPp callers, IVR, queue, agents' phones): a ramp of call rates,
# 120 s each, about 15-20 minutes; QUICK=1 make bench-voice: 15 s each. Not part of
# `make bench` or `make test`. Release build of the daemon and prompts only, in build-bench.
bench-voice: deps
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-bench -j$(JOBS) --target switchboard prompts
	BUILD_DIR=build-bench bench/voice.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

checksrc:
	scripts/checksrc.sh

clean:
	rm -rf build build-asan
