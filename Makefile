# Makefile — builds libcrew (static and shared), its tests, benchmarks and examples.
#
#   make            build the libraries, tests, benchmarks and examples
#   make test       install what is missing, then run every test: C tests plain,
#                   under AddressSanitizer+UBSan, threaded ones under ThreadSanitizer,
#                   pool ones in the lock-order build;
#                   then on Python 3.11, 3.12 and 3.13 (PY=3.12: one of them) the
#                   Python suite and CPython's own concurrent.futures tests
#   make fuzz       a long libFuzzer run of every target in tests/fuzz/ (FUZZ_SECONDS each;
#                   make test runs each for a few seconds: test-fuzz); the chaos suite
#                   alone: make test-chaos (docs/reliability.md)
#   make bench      run the benchmarks (figures for the README)
#   make demo       the main job: build everything, then the live demo of threads vs
#                   processes (python -m crew demo; charts in out/demo/)
#   make demo-c     the C demo alone
#   make docs       the documentation site into build/docs/html (warnings are errors)
#
# Objects go to build/<variant>/: `plain` (optimised), `asan`, `tsan` and `lockcheck`
# (every lock asserts the written lock order: src/base/lockorder.h).

CC      ?= cc
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Isrc -pthread -fPIC
CFLAGS_plain  := -O2 -g
CFLAGS_asan   := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CFLAGS_tsan   := -O1 -g -fsanitize=thread -Wno-tsan
# the lock-order build: every crew lock checks its rank (src/base/lockorder.h)
CFLAGS_lockcheck := -O1 -g -DCREW_LOCKCHECK
LDLIBS  := -pthread

SRCS    := $(wildcard src/*/*.c)
TESTS   := $(patsubst tests/c/%.c,%,$(wildcard tests/c/test_*.c))
# tests whose threads TSan checks (process pools fork from a threaded parent,
# which TSan does not model; their shared-memory logic is the same code)
TSAN_TESTS := test_ring test_arena test_pool_threads test_shared_sync test_shared_queue
# tests that walk every path that takes a pool, fork-server or registry lock
LOCK_TESTS := test_lockorder test_pool_threads test_pool_processes test_pool_forkserver \
              test_kill test_lifecycle test_protocol test_terminate_signal

all: lib tests bench examples python

# ---------------------------------------------------------------- library
define variant
build/$(1)/%.o: src/%.c $$(wildcard src/*/*.h) include/crew.h
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_COMMON) $$(CFLAGS_$(1)) -c $$< -o $$@
build/$(1)/libcrew.a: $$(patsubst src/%.c,build/$(1)/%.o,$$(SRCS))
	rm -f $$@ && ar rcs $$@ $$^
build/$(1)/test_%: tests/c/test_%.c $$(wildcard tests/c/*.h) build/$(1)/libcrew.a
	$$(CC) $$(CFLAGS_COMMON) $$(CFLAGS_$(1)) -Itests/c $$< build/$(1)/libcrew.a -o $$@ $$(LDLIBS)
endef
$(foreach v,plain asan tsan lockcheck,$(eval $(call variant,$(v))))

build/plain/libcrew.so: $(patsubst src/%.c,build/plain/%.o,$(SRCS))
	$(CC) -shared -o $@ $^ $(LDLIBS)

lib: build/plain/libcrew.a build/plain/libcrew.so

# ------------------------------------------------------------------ tests
tests: $(addprefix build/plain/,$(TESTS))

setup:
	@bash scripts/setup.sh

test: setup
	@python3 scripts/check_layers.py
	@$(MAKE) --no-print-directory test-c
	@$(MAKE) --no-print-directory test-fuzz
	@$(MAKE) --no-print-directory test-py
	@$(MAKE) --no-print-directory test-chaos
	@$(MAKE) --no-print-directory docs

# each C test binary runs under a time limit: a hang prints every thread's
# stack (gdb) and fails the run instead of holding it
CTEST := scripts/run_ctest.sh 300

test-c: $(addprefix build/plain/,$(TESTS)) $(addprefix build/asan/,$(TESTS)) \
        $(addprefix build/tsan/,$(TSAN_TESTS)) $(addprefix build/lockcheck/,$(LOCK_TESTS))
	@set -e; for t in $(TESTS); do echo "== $$t (plain)"; $(CTEST) build/plain/$$t; done
	@set -e; for t in $(TESTS); do echo "== $$t (asan+ubsan)"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(CTEST) build/asan/$$t; done
	@set -e; for t in $(TSAN_TESTS); do echo "== $$t (tsan)"; \
	  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(CTEST) setarch -R build/tsan/$$t; done
	@set -e; for t in $(LOCK_TESTS); do echo "== $$t (lock order)"; $(CTEST) build/lockcheck/$$t; done

# ------------------------------------------------------------- fuzzing
# libFuzzer targets (tests/fuzz/) for what the parent reads from memory or a
# socket a worker can write: answers and their ring, arena offsets, the fork
# server's messages, shared dict and queue records. Built with clang,
# ASan+UBSan; libcrew is compiled again for them (build/fuzz/).
#   make test-fuzz     each target over its corpus plus a few seconds (in make test)
#   make fuzz          a long run: FUZZ_SECONDS (600) per target; new inputs go
#                      to build/fuzz/corpus-<target>/ (copy the ones worth keeping
#                      into tests/fuzz/corpus/<target>/); crashes to build/fuzz/
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Isrc -Itests/fuzz -pthread \
                -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SMOKE   ?= 4
FUZZ_SECONDS ?= 600
FUZZ_ENV     := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

build/fuzz/%.o: src/%.c $(wildcard src/*/*.h) include/crew.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
build/fuzz/libcrew.a: $(patsubst src/%.c,build/fuzz/%.o,$(SRCS))
	rm -f $@ && ar rcs $@ $^
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) build/fuzz/libcrew.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< build/fuzz/libcrew.a -o $@ -pthread

# fuzz_codec drives the frame parse of the Python extensions (no libcrew in it)
build/fuzz/fuzz_codec: python/crew/_frame.h

fuzz-build: $(addprefix build/fuzz/,$(FUZZ_TARGETS))

test-fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do echo "== $$t (libFuzzer, $(FUZZ_SMOKE) s)"; \
	  mkdir -p build/fuzz/smoke-$$t; \
	  rc=0; $(FUZZ_ENV) build/fuzz/$$t -max_total_time=$(FUZZ_SMOKE) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/$$t- build/fuzz/smoke-$$t tests/fuzz/corpus/$$t \
	    > build/fuzz/$$t.log 2>&1 || rc=$$?; \
	  grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)" build/fuzz/$$t.log || true; \
	  if [ $$rc -ne 0 ]; then tail -60 build/fuzz/$$t.log; echo "$$t failed (build/fuzz/$$t.log)"; exit 1; fi; done

fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do echo "== $$t (libFuzzer, $(FUZZ_SECONDS) s)"; \
	  mkdir -p build/fuzz/corpus-$$t; \
	  $(FUZZ_ENV) build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/$$t- build/fuzz/corpus-$$t tests/fuzz/corpus/$$t; done

# ---------------------------------------------------------------- python
# One virtual environment per interpreter crew supports: .venv-3.11, .venv-3.12
# and .venv-3.13. scripts/find_python.sh picks the interpreter (Debian's build,
# else pyenv's); scripts/venv.sh fills the venv from PyPI with pyproject.toml's
# extras at the versions pinned in constraints.txt; crew itself is installed
# editable (setup.py: libcrew compiled once with this Makefile's warnings).
# .venv is a link to .venv-3.13, the one the README and `make demo` use.
#
#   make test            C tests, then the Python tests on every interpreter
#   make test PY=3.12    ... on one (or PY="3.11 3.13")
#   make lock            re-pin constraints.txt after a dependency change
PYS        := 3.11 3.12 3.13
# the ones this machine has (scripts/find_python.sh says how to get the others);
# looked for once, by the top make: its sub-makes inherit the answer
ifndef FOUND_PYS
FOUND_PYS  := $(foreach v,$(PYS),$(if $(shell scripts/find_python.sh $(v) 2>/dev/null),$(v)))
MISSING_PYS := $(filter-out $(FOUND_PYS),$(PYS))
endif
export FOUND_PYS
PY         ?= $(FOUND_PYS)
DEFAULT_PY := $(if $(filter 3.13,$(FOUND_PYS)),3.13,$(lastword $(FOUND_PYS)))
ifneq ($(MISSING_PYS),)
$(warning crew: no Python $(MISSING_PYS) here, so it is not built or tested;   scripts/find_python.sh $(firstword $(MISSING_PYS)) says how to get it)
endif
ifeq ($(FOUND_PYS),)
$(error crew: none of Python $(PYS) here (with headers and venv); run scripts/find_python.sh 3.13)
endif
# the extras each venv gets: every one the tests need; the default venv also
# gets the bench peers (python -m crew bench races them) and Sphinx (make docs)
EXTRAS      = test,demo$(if $(filter $(DEFAULT_PY),$*),$(comma)bench$(comma)docs)
comma      := ,
# what the compiled part is built from (an editable install sees .py edits itself)
PY_SRCS    := setup.py include/crew.h $(SRCS) $(wildcard src/*/*.h) $(wildcard python/crew/*.c) $(wildcard python/crew/*.h)
# setup.py compiles with -Werror here (a plain `pip install` from an sdist does not)
export CREW_WERROR := 1

.venv-%/.deps: pyproject.toml constraints.txt scripts/venv.sh scripts/find_python.sh
	scripts/venv.sh $* $(EXTRAS)
	@touch $@

.venv-%/.crew-installed: .venv-%/.deps $(PY_SRCS)
	@echo "pip install -e . into .venv-$*"
	@.venv-$*/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation \
	  --no-deps -e . > .venv-$*/pip.log 2>&1 || { grep -v "is ignored: it is neither" .venv-$*/pip.log; exit 1; }
	.venv-$*/bin/python -c "import crew._core, crew._shared"
	@touch $@

# .venv -> .venv-3.13 (an older checkout's real .venv directory is replaced)
.venv/bin/python: .venv-$(DEFAULT_PY)/.crew-installed
	@if [ -e .venv ] && [ ! -L .venv ]; then rm -rf .venv; fi
	ln -sfn .venv-$(DEFAULT_PY) .venv

python: $(foreach v,$(PY),.venv-$(v)/.crew-installed) \
        $(if $(filter $(DEFAULT_PY),$(PY)),.venv/bin/python)

test-py: $(foreach v,$(PY),test-py-$(v))

test-py-%: .venv-%/.crew-installed
	@echo "== Python $* ($$(readlink -f .venv-$*/.base)): pytest"
	timeout -k 10 1500 .venv-$*/bin/python -m pytest -q -p no:cacheprovider tests/python
	@echo "== Python $*: CPython's own concurrent.futures tests on crew.Executor"
	timeout -k 10 900 .venv-$*/bin/python tests/cpython/run_cf_tests.py

# the chaos suite (tests/chaos/): seeded kills, stops and hangs against live
# pools, once, on the default interpreter (CREW_CHAOS_SEED=N replays a run)
test-chaos: .venv-$(DEFAULT_PY)/.crew-installed
	@echo "== Python $(DEFAULT_PY): chaos suite"
	timeout -k 10 600 .venv-$(DEFAULT_PY)/bin/python -m pytest -q -s -p no:cacheprovider tests/chaos

lock:
	python3 scripts/lock.py $(foreach v,$(PYS),$$(scripts/find_python.sh $(v) || echo MISSING-$(v)))

# ------------------------------------------------------------ benchmarks
BENCH_SRCS := bench/raw.c
build/plain/bench_core: bench/bench_core.c $(BENCH_SRCS) build/plain/libcrew.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_plain) -Ibench $< $(BENCH_SRCS) build/plain/libcrew.a -o $@ $(LDLIBS)
build/plain/bench_raw: bench/bench_raw.c $(BENCH_SRCS)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_plain) -Ibench $^ -o $@ $(LDLIBS)

build/plain/bench_shared: bench/bench_shared.c build/plain/libcrew.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_plain) $< build/plain/libcrew.a -o $@ $(LDLIBS)

# shared-state figures (docs/shared.md): queue, pipe, dict
bench-shared: build/plain/bench_shared
	build/plain/bench_shared

bench: build/plain/bench_core build/plain/bench_raw

bench-run: bench
	build/plain/bench_core

# -------------------------------------------------------------- examples
build/plain/demo_c: examples/c/demo.c build/plain/libcrew.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_plain) $< build/plain/libcrew.a -o $@ $(LDLIBS) -lm

build/plain/shared_counter: examples/c/shared_counter.c build/plain/libcrew.a
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_plain) $< build/plain/libcrew.a -o $@ $(LDLIBS)

examples: build/plain/demo_c build/plain/shared_counter

demo-c: setup build/plain/demo_c
	build/plain/demo_c

demo: setup
	@$(MAKE) --no-print-directory all PY=$(DEFAULT_PY)
	.venv/bin/python -m crew demo

# ------------------------------------------------------------------ docs
# the documentation site (docs/, Sphinx + MyST) into build/docs/html; any
# warning fails the build (-E: every page re-read, so none hides in a cache).
# Its code examples run in make test
# (tests/python/test_docs_examples.py).
docs: .venv-$(DEFAULT_PY)/.crew-installed
	.venv-$(DEFAULT_PY)/bin/python -m sphinx -E -W --keep-going -q -b html docs build/docs/html
	@echo "docs: build/docs/html/index.html"

clean:
	rm -rf build

.PRECIOUS: .venv-%/.deps .venv-%/.crew-installed
.PHONY: fuzz fuzz-build test-fuzz test-chaos bench-shared all lib tests setup test test-c python test-py lock bench bench-run examples demo demo-c clean docs
