# clipnn build. `make` builds the libraries, the tool and the examples; `make test` builds
# and runs the tests; `make sanitize` runs them under ASan + UBSan;
# `make bench` runs the benchmarks. BUILD=dir keeps a separate build tree.
#
# The default build runs on any x86-64 (what `make install` installs can be
# copied to another machine): the hot loops outside BLAS are compiled for
# AVX-512, AVX2 + FMA and the baseline, picked at load time for the CPU.
# NATIVE=1 compiles everything for this CPU alone (-march=native, one
# version of each loop); DISPATCH=0 keeps the portable flags without the
# per-CPU versions. A build tree remembers its flags and rebuilds when they
# change.

CC       ?= cc
# MPI=1: the library and tool for data-parallel training over MPI (mpicc),
# in build-mpi unless BUILD says otherwise; without it nothing refers to MPI.
# MPICC picks the MPI: mpicc (the system's default, Open MPI on Debian) or
# mpicc.mpich, e.g. make MPI=1 MPICC=mpicc.mpich BUILD=build-mpich.
MPI      ?= 0
MPICC    ?= mpicc
ifeq ($(MPI),1)
CC       := $(MPICC)
BUILD    ?= build-mpi
CPPFLAGS += -DCLIPNN_MPI
endif
BUILD    ?= build
PREFIX   ?= /usr/local
NATIVE   ?= 0
DISPATCH ?= 1
ifeq ($(NATIVE),1)
OPT      ?= -O2 -march=native
DISPATCH := 0
else
OPT      ?= -O2
endif
ifeq ($(DISPATCH),0)
CPPFLAGS += -DCLIPNN_NO_DISPATCH
endif
CFLAGS   ?= $(OPT) -g
CSTD     := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OMP      ?= -fopenmp
ALL_CFLAGS = $(CSTD) $(WARN) $(CPPFLAGS) $(CFLAGS) $(OMP) -fPIC -fvisibility=hidden -Iinclude -Isrc $(SANITIZE)
LDLIBS   := -lblas -lpng -lz -lm
ALL_LDFLAGS = $(LDFLAGS) $(OMP) $(SANITIZE)

LIB_SRC  := $(sort $(wildcard src/*/*.c))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ:= $(BENCH_SRC:%.c=$(BUILD)/%.o)

# The version comes from the header only. While MAJOR is 0 every minor
# version may break the ABI, so the soname carries MAJOR.MINOR; from 1.0 on,
# MAJOR alone.
version_part = $(shell sed -n 's/^\#define CLIPNN_VERSION_$(1) \([0-9][0-9]*\)$$/\1/p' include/clipnn/base.h)
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION_MINOR := $(call version_part,MINOR)
VERSION_PATCH := $(call version_part,PATCH)
VERSION  := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SOVERSION := $(if $(filter 0,$(VERSION_MAJOR)),$(VERSION_MAJOR).$(VERSION_MINOR),$(VERSION_MAJOR))
SONAME   := libclipnn.so.$(SOVERSION)

STATIC   := $(BUILD)/libclipnn.a
SHARED   := $(BUILD)/libclipnn.so.$(VERSION)
SHARED_LINKS := $(BUILD)/$(SONAME) $(BUILD)/libclipnn.so
PCFILE   := $(BUILD)/clipnn.pc
TOOL     := $(BUILD)/clipnn
TESTBIN  := $(BUILD)/test_clipnn
BENCHBIN := $(BUILD)/bench_clipnn
EXAMPLES := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all test sanitize tsan bench install uninstall clean FORCE test-mpi test-mpich mpi-tests bench-mpi mpi-bench
all: $(STATIC) $(SHARED) $(SHARED_LINKS) $(PCFILE) $(TOOL) $(EXAMPLES)

# The compile command of the last build in this tree; rewritten (and so
# newer than the objects) only when it changes, e.g. by NATIVE=1.
FLAGS_STAMP := $(BUILD)/cflags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS)' > $@

$(BUILD)/%.o: %.c $(FLAGS_STAMP) include/clipnn.h $(wildcard include/clipnn/*.h) $(wildcard src/*/*.h) $(wildcard cli/*.h) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The noise generator's loop vectorizes only without errno on sqrtf (its
# argument is never negative; sqrt is exact either way, values unchanged);
# GCC ignores the option in a #pragma for builtins. private: not passed on
# to the prerequisites.
$(BUILD)/src/base/normal_block.o: private ALL_CFLAGS += -fno-math-errno

# the built-in data sets are embedded with .incbin
$(BUILD)/src/data/builtin.o: data/digits.csv.gz data/breast_cancer.csv.gz

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJ) Makefile
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $(LIB_OBJ) $(ALL_LDFLAGS) $(LDLIBS)

# the soname and development links, as install makes them
$(SHARED_LINKS): $(SHARED)
	ln -sf $(notdir $(SHARED)) $@

# clipnn.pc for PREFIX into $(1): made at install (PREFIX may differ from the
# build's) and in the build tree for the tests
make_pc = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' clipnn.pc.in > $(1)

$(PCFILE): clipnn.pc.in include/clipnn/base.h
	@mkdir -p $(dir $@)
	$(call make_pc,$@)

$(TOOL): $(CLI_OBJ) $(STATIC)
	$(CC) -o $@ $(CLI_OBJ) $(STATIC) $(ALL_LDFLAGS) $(LDLIBS)

# Examples: compiled from the public headers alone and linked against the
# shared library, so that they use nothing it does not export.
$(BUILD)/examples/%: examples/%.c include/clipnn.h $(wildcard include/clipnn/*.h) $(SHARED) $(SHARED_LINKS)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) $(SANITIZE) -Iinclude $< -o $@ $(LDFLAGS) $(SANITIZE) $(abspath $(SHARED)) -Wl,-rpath,$(abspath $(BUILD))

$(TESTBIN): $(TEST_OBJ) $(STATIC)
	$(CC) -o $@ $(TEST_OBJ) $(STATIC) $(ALL_LDFLAGS) $(LDLIBS)

$(BENCHBIN): $(BENCH_OBJ) $(STATIC)
	$(CC) -o $@ $(BENCH_OBJ) $(STATIC) $(ALL_LDFLAGS) $(LDLIBS)

# Tests: one runner over every tests/*.c; it ends with "N passed, M failed".
# `make MPI=1 test` runs them against the MPI build (one process, MPI's
# singleton init): dist_without_mpi_is_one_process and the tool's step log
# under an 8 kB file-size limit (Open MPI's MPI_Init cannot size its
# shared-memory files under it) return at once there.
test: $(TESTBIN) $(TOOL) $(SHARED_LINKS) $(PCFILE) $(EXAMPLES)
	CLIPNN_BIN=$(abspath $(TOOL)) CLIPNN_LIB=$(abspath $(SHARED)) CLIPNN_BUILD=$(abspath $(BUILD)) \
	    CLIPNN_EXAMPLES=$(abspath $(BUILD))/examples CLIPNN_ROOT=$(CURDIR) OMP_NUM_THREADS=2 \
	    CLIPNN_SANITIZE='$(SANITIZE)' $(TESTBIN) $(T)

# allocator_may_return_null: tests ask for absurd sizes on purpose and check
# that the library reports NOMEM instead of aborting.
sanitize:
	ASAN_OPTIONS=allocator_may_return_null=1 $(MAKE) BUILD=build-san SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" OPT=-O1 test

# Fuzzing: every fuzz/fuzz_NAME.c is a libFuzzer harness, seeded from
# fuzz/corpus/NAME/ (a new harness needs nothing more). `make fuzz SECONDS=N`
# builds them with clang under ASan + UBSan in build-fuzz and runs each for N
# seconds (FUZZERS="csv npy" picks some); a crash, leak, timeout or memory
# blow-up fails the target and leaves the input in build-fuzz/fuzz/. The
# build has no OpenMP (the harnesses run one thread; -Wno-unused-variable:
# some thread counts are read only by OpenMP pragmas). The harnesses link
# the tool's objects, main aside, for its option parser.
SECONDS  ?= 60
FUZZERS  ?= $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_RUN := -timeout=10 -rss_limit_mb=2048 -max_len=65536 -close_fd_mask=3
.PHONY: fuzz fuzz-build fuzz-seeds
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OMP= CFLAGS='-O1 -g -Wno-unused-variable' \
	    SANITIZE='-fsanitize=fuzzer-no-link $(FUZZ_SAN)' fuzz-build
	@set -e; for f in $(FUZZERS); do \
	    mkdir -p build-fuzz/fuzz/corpus/$$f; echo "fuzz $$f: $(SECONDS) s"; \
	    build-fuzz/fuzz/fuzz_$$f $(FUZZ_RUN) -max_total_time=$(SECONDS) -artifact_prefix=build-fuzz/fuzz/$$f- \
	        build-fuzz/fuzz/corpus/$$f fuzz/corpus/$$f > build-fuzz/fuzz/$$f.log 2>&1 \
	        || { tail -60 build-fuzz/fuzz/$$f.log; echo "fuzz $$f: FAILED (log: build-fuzz/fuzz/$$f.log)"; exit 1; }; \
	    grep '^Done' build-fuzz/fuzz/$$f.log || tail -3 build-fuzz/fuzz/$$f.log; \
	done

fuzz-build: $(FUZZERS:%=$(BUILD)/fuzz/fuzz_%)

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJ)) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -I. -fsanitize=fuzzer $< $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJ)) $(STATIC) \
	    -o $@ $(ALL_LDFLAGS) -fsanitize=fuzzer $(LDLIBS)

# The checkpoint seeds come from a run of the library (fuzz_checkpoint.c
# built as a program); the other seeds are small files kept as they are.
fuzz-seeds: $(STATIC)
	$(CC) $(ALL_CFLAGS) -I. -DFUZZ_MAKE_SEEDS fuzz/fuzz_checkpoint.c $(STATIC) -o $(BUILD)/make_seeds $(ALL_LDFLAGS) $(LDLIBS)
	mkdir -p fuzz/corpus/checkpoint && $(BUILD)/make_seeds fuzz/corpus/checkpoint

# ThreadSanitizer over the tests of concurrent use (two models trained in
# two threads, output files): built without OpenMP, whose runtime (libgomp)
# is not instrumented and makes TSan report races inside it; the library's
# kernels then run on one thread each, and the threads under test are the
# application's. -Wno-unknown-pragmas -Wno-unused-variable: the OpenMP
# pragmas and the thread counts only they read. DISPATCH=0: the per-CPU
# kernels' resolvers run before TSan has started and crash under it.
TSAN_TESTS ?= concurrency outputs limits_input
tsan:
	$(MAKE) BUILD=build-tsan OMP= DISPATCH=0 CFLAGS='-O2 -g -Wno-unknown-pragmas -Wno-unused-variable' \
	    SANITIZE='-fsanitize=thread' build-tsan/test_clipnn build-tsan/clipnn
	@set -e; for t in $(TSAN_TESTS); do \
	    CLIPNN_BIN=$(abspath build-tsan/clipnn) CLIPNN_ROOT=$(CURDIR) TSAN_OPTIONS='halt_on_error=1 exitcode=66' \
	        build-tsan/test_clipnn $$t; done

# The MPI build against the plain one under mpirun (tests/mpi/run.sh): same
# weights with 1, 2 and 3 processes, a resume with another count, a process
# that fails or is killed ends the job. Run as `make test-mpi` (plain build in
# $(BUILD), the MPI one in build-mpi).
test-mpi: $(TOOL)
	$(MAKE) MPI=1 mpi-tests PLAIN_TOOL=$(abspath $(TOOL))

# The same tests against MPICH (Debian's mpich, beside Open MPI): built with
# mpicc.mpich in build-mpich, run with its launcher, whose options differ
# (it oversubscribes without being told and runs as root).
test-mpich: $(TOOL)
	$(MAKE) MPI=1 MPICC=mpicc.mpich BUILD=build-mpich mpi-tests PLAIN_TOOL=$(abspath $(TOOL)) \
	    CLIPNN_MPIRUN=mpiexec.mpich

mpi-tests: $(TOOL) $(BUILD)/weights_diff $(BUILD)/clip_where $(BUILD)/json_check $(BUILD)/lib_job
	CLIPNN_MPIRUN='$(CLIPNN_MPIRUN)' bash tests/mpi/run.sh $(PLAIN_TOOL) $(abspath $(TOOL)) \
	    $(abspath $(BUILD)/weights_diff) $(abspath $(BUILD)/clip_where) $(abspath $(BUILD)/lib_job)

$(BUILD)/weights_diff: tests/mpi/weights_diff.c include/clipnn.h $(STATIC)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $< -o $@ $(STATIC) $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/clip_where: tests/mpi/clip_where.c include/clipnn.h $(STATIC)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $< -o $@ $(STATIC) $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/lib_job: tests/mpi/lib_job.c include/clipnn.h $(STATIC)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude $< -o $@ $(STATIC) $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/json_check: tests/mpi/json_check.c src/io/json.h $(STATIC)
	$(CC) -std=c11 $(WARN) $(CFLAGS) -Iinclude -Isrc $< -o $@ $(STATIC) $(ALL_LDFLAGS) $(LDLIBS)

# The MPI build on this machine: all-reduce latency and bandwidth, and
# Fashion-MNIST with 1 and 2 processes, step time split into compute and
# communication, the all-reduce fused and in buckets (bench/mpi/run.sh).
bench-mpi:
	$(MAKE) MPI=1 mpi-bench

mpi-bench: $(TOOL) $(BUILD)/allreduce_bench $(BUILD)/overlap_bench
	bash bench/mpi/run.sh $(abspath $(TOOL)) $(abspath $(BUILD)/allreduce_bench) $(abspath $(BUILD)/overlap_bench)

# Fused against bucketed all-reduce in one job (private headers: the nn's hook, the bucket size).
$(BUILD)/overlap_bench: bench/mpi/overlap.c include/clipnn.h $(STATIC)
	$(CC) -std=c11 $(WARN) $(CPPFLAGS) $(CFLAGS) -Iinclude -Isrc $< -o $@ $(STATIC) $(ALL_LDFLAGS) $(LDLIBS)

$(BUILD)/allreduce_bench: bench/mpi/allreduce.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) $(CFLAGS) $< -o $@

bench: $(BENCHBIN) $(TOOL)
	bash bench/run.sh $(abspath $(BENCHBIN)) $(abspath $(TOOL))

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -d $(DESTDIR)$(PREFIX)/include/clipnn
	install -m 644 include/clipnn.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/clipnn/*.h $(DESTDIR)$(PREFIX)/include/clipnn/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(SHARED)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libclipnn.so
	install -m 755 $(TOOL) $(DESTDIR)$(PREFIX)/bin/
	$(call make_pc,$(DESTDIR)$(PREFIX)/lib/pkgconfig/clipnn.pc)
	@# the dynamic linker's cache, when installing for real as root (the tool
	@# itself links the library statically and needs none of this)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
	    echo ldconfig; ldconfig; fi

# What install put there, and nothing else.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/clipnn $(DESTDIR)$(PREFIX)/lib/pkgconfig/clipnn.pc
	rm -f $(DESTDIR)$(PREFIX)/lib/libclipnn.a $(DESTDIR)$(PREFIX)/lib/libclipnn.so $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	rm -f $(DESTDIR)$(PREFIX)/lib/$(notdir $(SHARED))
	rm -f $(DESTDIR)$(PREFIX)/include/clipnn.h $(patsubst include/%,$(DESTDIR)$(PREFIX)/include/%,$(wildcard include/clipnn/*.h))
	-rmdir $(DESTDIR)$(PREFIX)/include/clipnn 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
	    echo ldconfig; ldconfig; fi

clean:
	rm -rf build build-*
