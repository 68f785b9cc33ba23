# Quick start on a fresh Debian 12 machine, as root:  make demo  ·  make test
# Both install what is missing (scripts/install-deps.sh), configure and build first.

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CLANG_FORMAT ?= clang-format
FORMAT_FILES = $(shell git ls-files '*.h' '*.cc' 2>/dev/null)
# What the demos run (scripts/demo.sh, scripts/demo-local.sh): the three binaries, not the tests.
DEMO_TARGETS = shadan-agent shadan-controller shadanctl
# No "make[1]: Entering directory" lines from the make that cmake --build runs under this one.
MAKEFLAGS += --no-print-directory

FUZZ_DIR ?= build-fuzz
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan

.PHONY: all deps configure build build-demo test unit integration demo demo-local bench fuzz test-asan test-tsan format format-check clean package

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DSHADAN_WERROR=ON >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

build-demo: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target $(DEMO_TARGETS)

# The whole suite: formatting, unit tests (no root), integration tests (root, network namespaces).
# --timeout: the cap of a test that sets none of its own (ctest's default, 1500 s, would let one
# hang eat half of CI; the suites set theirs in tests/**/CMakeLists.txt).
test: build format-check
	@ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 600

unit: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure --timeout 600 -j $(JOBS) -L unit

integration: build
	@ctest --test-dir $(BUILD_DIR) --output-on-failure --timeout 600 -L integration

demo: build-demo
	@bash scripts/demo.sh $(BUILD_DIR)

# The same cut with the agent's local CLI only (no controller): break-glass and lab use.
demo-local: build-demo
	@bash scripts/demo-local.sh $(BUILD_DIR)

# The three .debs (CPack; docs/install.md) into $(BUILD_DIR)/packages/. scripts/package-test.sh
# (run by make test as root) lints, installs, upgrades and purges them.
package: build
	@cd $(BUILD_DIR) && cpack --config CPackConfig.cmake

bench: build
	@bash scripts/bench.sh $(BUILD_DIR)

# The libFuzzer targets (tests/fuzz/README.md), with clang-14, ASan and UBSan, in $(FUZZ_DIR);
# scripts/fuzz.sh SECONDS runs each of them.
fuzz: deps
	@cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHADAN_FUZZ=ON \
	  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS)

# The whole suite (unit, integration, scale) with every Shadan target built under ASan + UBSan,
# in $(ASAN_DIR): about an hour on 2 cores, so not part of make test (docs/security.md).
# Every process's report goes to a file under $(ASAN_DIR)/sanitizer-reports, the daemons that
# scripts start included (their stderr is a log nobody reads): any file there fails the run.
test-asan: deps
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DSHADAN_SANITIZE=address >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS)
	@rm -rf $(ASAN_DIR)/sanitizer-reports && mkdir -p $(ASAN_DIR)/sanitizer-reports
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:log_path=$(abspath $(ASAN_DIR))/sanitizer-reports/asan \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(abspath $(ASAN_DIR))/sanitizer-reports/ubsan \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure -j $(JOBS); rc=$$?; \
	  scripts/sanitizer-reports.sh $(ASAN_DIR)/sanitizer-reports || rc=1; exit $$rc

# The same under ThreadSanitizer, in $(TSAN_DIR) (docs/security.md "Sanitizers").
test-tsan: deps
	@cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DSHADAN_SANITIZE=thread >/dev/null
	@cmake --build $(TSAN_DIR) -j $(JOBS)
	@rm -rf $(TSAN_DIR)/sanitizer-reports && mkdir -p $(TSAN_DIR)/sanitizer-reports
	@TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:log_path=$(abspath $(TSAN_DIR))/sanitizer-reports/tsan \
	  ctest --test-dir $(TSAN_DIR) --output-on-failure -j $(JOBS); rc=$$?; \
	  scripts/sanitizer-reports.sh $(TSAN_DIR)/sanitizer-reports || rc=1; exit $$rc

format:
	@$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check: deps
	@$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES) && echo "format-check: $(words $(FORMAT_FILES)) files clean"

clean:
	rm -rf $(BUILD_DIR)
