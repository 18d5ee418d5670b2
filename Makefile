# A thin wrapper over CMake: every target installs what is missing (see
# scripts/bootstrap.sh), configures and builds, then does its job.
#
#   make            build (build/)
#   make demo       start a local broker and workers, walk through the lesson
#   make test       the whole test suite (unit, integration, compose: these
#                   need Docker; without it they are left out, loudly)
#   make sanitize   unit and integration tests under ASan + UBSan (build-asan/)
#   make tsan       the multi-threaded client test under ThreadSanitizer (build-tsan/)
#   make fuzz       every libFuzzer target replays its seeds, then fuzzes for
#                   FUZZ_SECONDS (build-fuzz/)
#   make valgrind   unit tests under valgrind's memcheck
#   make bench      the benchmark (QUICK=1 for the one-minute version)
#   make format     apply .clang-format;  make format-check  verify it
#   make clean

BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 30
CMAKE_FLAGS ?=
CTEST_FLAGS ?= --output-on-failure
export CTEST_OUTPUT_ON_FAILURE = 1

.PHONY: all build demo test sanitize tsan fuzz valgrind bench format format-check clean

all: build

# configure(dir, extra flags)
define configure
	cmake -S . -B $(1) -DTQ_WERROR=ON $(2) $(CMAKE_FLAGS) >/dev/null
endef

build:
	@scripts/bootstrap.sh build
	$(call configure,$(BUILD),)
	cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory

demo: build
	$(BUILD)/cli/tq demo --local

# The compose tests run where Docker can (bootstrap's compose profile
# installs what it can); elsewhere they are left out with a loud line, before
# the tests and again after ctest's summary, and with TQ_REQUIRE_COMPOSE=1
# (CI) that is a failure.  The check runs in the recipe, after the set-up,
# not when make reads it.
test:
	@scripts/bootstrap.sh test
	@scripts/bootstrap.sh compose
	$(call configure,$(BUILD),)
	cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory
	@scripts/compose-check.sh
	cd $(BUILD) && ctest $(CTEST_FLAGS) $$("$(CURDIR)/scripts/compose-check.sh" --ctest-args)
	@scripts/compose-check.sh --reminder

sanitize:
	@scripts/bootstrap.sh test
	$(call configure,build-asan,-DTQ_SANITIZER=address,undefined -DTQ_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug)
	cmake --build build-asan -j$(JOBS) -- --no-print-directory
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest $(CTEST_FLAGS) -L 'unit|integration' -LE slow

tsan:
	@scripts/bootstrap.sh test
	$(call configure,build-tsan,-DTQ_SANITIZER=thread -DTQ_BUILD_BENCH=OFF -DTQ_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Debug)
	cmake --build build-tsan -j$(JOBS) -- --no-print-directory
	cd build-tsan && ctest $(CTEST_FLAGS) -L tsan

fuzz:
	@scripts/bootstrap.sh test
	CC=clang $(call configure,build-fuzz,-DTQ_BUILD_FUZZ=ON -DTQ_BUILD_TESTS=OFF -DTQ_BUILD_BENCH=OFF -DTQ_BUILD_EXAMPLES=OFF)
	cmake --build build-fuzz -j$(JOBS) -- --no-print-directory
	ctest --test-dir build-fuzz/tests/fuzz $(CTEST_FLAGS)
	scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

valgrind: build
	@command -v valgrind >/dev/null || scripts/bootstrap.sh test
	@cd $(BUILD) && for t in tests/unit/test_*; do \
		[ -x "$$t" ] && [ -f "$$t" ] || continue; \
		echo "valgrind: $$t"; \
		valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
			"$$t" >/dev/null || exit 1; \
	done; echo "valgrind: clean"

# The full run records its figures and plots in bench/ (see bench/README.md);
# QUICK=1 keeps them in bench/out/ so that it never overwrites them.
# BENCH_FLAGS passes options to tq-bench (e.g. --prefetch 0).
BENCH_FLAGS ?=
bench:
	@scripts/bootstrap.sh bench
	$(call configure,$(BUILD),)
	cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory
	$(BUILD)/bench/tq-bench $(if $(QUICK),--quick --json bench/out/results-quick.json,--json bench/results.json) $(BENCH_FLAGS)
	@if command -v gnuplot >/dev/null; then \
		gnuplot -e "data='bench/out'; dest='$(if $(QUICK),bench/out,bench)'" bench/plot.gp; fi

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	scripts/format-check.sh

clean:
	rm -rf build build-asan build-tsan build-fuzz
