# recd — plain GNU make build.
# Why make and not CMake: one binary, one test runner, a few build flavours
# (release, sanitizers, fuzz) that are just variable settings; no configure step.
#
#   make            build build/recd (release, -O2 -g)
#   make test       build and run unit + black-box tests (the README's test command)
#   make SAN=1 test the same under ASan+UBSan (no recover), in build/san/
#   make fuzz       libFuzzer drivers (clang) in build/fuzz/
#   WERROR=1        turn warnings into errors (CI)

CC      ?= cc
PKGS    := libevent libevent_pthreads jansson sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
# OpenBLAS + LAPACKE (src/model/ease.c); cblas.h sits in an openblas include dir
BLAS_CFLAGS := $(shell pkg-config --cflags openblas lapacke 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas lapacke 2>/dev/null)
# XGBoost C API (src/model/ranker.c; Debian libxgboost-dev, header in /usr/include)
XGB_LIBS    := -lxgboost

WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN    += -Werror
endif
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Isrc $(PKG_CFLAGS)
BASE_CFLAGS += $(BLAS_CFLAGS)

ifeq ($(SAN),1)
BUILD   ?= build/san
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDSAN   := -fsanitize=address,undefined
else
BUILD   ?= build
OPT     := -O2 -g
LDSAN   :=
endif

CFLAGS  += $(BASE_CFLAGS) $(OPT)
LDLIBS  := $(PKG_LIBS) -lm -pthread
LDLIBS  += $(BLAS_LIBS) $(XGB_LIBS)

VERSION := $(shell cat VERSION)
CFLAGS  += -DRECD_VERSION=\"$(VERSION)\"

LAYERS  := util store feature model engine http eval
LIB_SRC := $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.c))
CLI_SRC := $(wildcard src/cli/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/unit/*/*_test.c)
TEST_BIN := $(BUILD)/unit_tests

.PHONY: all test unit blackbox clean fuzz fuzz-regress
all: $(BUILD)/recd

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/librecd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# src/cli/printf_hooks.c: the executable's refusals of printf hooks must be
# visible to the shared libraries (libquadmath) for them to take precedence
PRINTF_HOOKS := $(foreach f,register_printf_type register_printf_modifier register_printf_specifier,-Wl,--export-dynamic-symbol=$(f))

$(BUILD)/recd: $(CLI_OBJ) $(BUILD)/librecd.a
	$(CC) $(LDSAN) $(PRINTF_HOOKS) -o $@ $(CLI_OBJ) $(BUILD)/librecd.a $(LDLIBS)

$(TEST_BIN): $(TEST_SRC) tests/unit/main.c tests/unit/unit.h $(BUILD)/librecd.a $(filter-out src/cli/main.c,$(CLI_SRC))
	$(CC) $(CFLAGS) -Itests/unit -o $@ tests/unit/main.c $(TEST_SRC) $(BUILD)/librecd.a $(CHECK_LIBS) $(LDLIBS) $(LDSAN)

unit: $(TEST_BIN)
	$(TEST_BIN)

blackbox: $(BUILD)/recd
	RECD_BIN=$(abspath $(BUILD)/recd) python3 tests/blackbox/run.py

test: $(BUILD)/recd $(TEST_BIN) $(BUILD)/fuzz_replay
	@tests/run $(BUILD)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# ---- fuzzing (fuzz/README.md) ----
# $(BUILD)/fuzz_replay: every fuzz driver linked into one plain program (each
# compiled with LLVMFuzzerTestOneInput renamed to fuzz_<name>) that replays the
# checked-in corpora; built like everything else, so SAN=1 replays under ASan.
# `make fuzz`: real libFuzzer binaries in $(FUZZ_BUILD) (clang; the whole library
# rebuilt with the fuzzer's coverage and ASan+UBSan).
FUZZ_DRIVERS := route_fuzz event_fuzz rfc3339_fuzz config_fuzz csv_fuzz model_fuzz http_fuzz evblock_fuzz snapshot_fuzz
FUZZ_REPLAY_OBJ := $(FUZZ_DRIVERS:%=$(BUILD)/obj/fuzz/%.replay.o) $(BUILD)/obj/fuzz/replay_main.o

$(FUZZ_DRIVERS:%=$(BUILD)/obj/fuzz/%.replay.o): $(BUILD)/obj/fuzz/%.replay.o: fuzz/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -DLLVMFuzzerTestOneInput=fuzz_$(patsubst %_fuzz,%,$*) -c $< -o $@

$(BUILD)/fuzz_replay: $(FUZZ_REPLAY_OBJ) $(BUILD)/librecd.a
	$(CC) $(LDSAN) -o $@ $(FUZZ_REPLAY_OBJ) $(BUILD)/librecd.a $(LDLIBS)

fuzz-regress: $(BUILD)/fuzz_replay
	$(BUILD)/fuzz_replay fuzz/corpus

FUZZ_CC    ?= clang
FUZZ_BUILD ?= build/fuzz
FUZZ_TIME  ?= 60
FUZZ_SANS  := address,undefined
FUZZ_CFLAGS := $(BASE_CFLAGS) -DRECD_VERSION=\"$(VERSION)\" -O1 -g -fno-omit-frame-pointer \
               -fsanitize=fuzzer-no-link,$(FUZZ_SANS) -fno-sanitize-recover=all
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_DRV_OBJ := $(FUZZ_DRIVERS:%=$(FUZZ_BUILD)/obj/fuzz/%.o)
FUZZ_BINS    := $(FUZZ_DRIVERS:%=$(FUZZ_BUILD)/%)

ifneq ($(filter fuzz fuzz-run $(FUZZ_BINS),$(MAKECMDGOALS)),)
ifeq ($(shell command -v $(FUZZ_CC) 2>/dev/null),)
$(error make fuzz needs clang with libFuzzer (FUZZ_CC=$(FUZZ_CC) not found))
endif
endif

$(FUZZ_LIB_OBJ) $(FUZZ_DRV_OBJ): $(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/librecd.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): $(FUZZ_BUILD)/%: $(FUZZ_BUILD)/obj/fuzz/%.o $(FUZZ_BUILD)/librecd.a
	$(FUZZ_CC) -fsanitize=fuzzer,$(FUZZ_SANS) -o $@ $< $(FUZZ_BUILD)/librecd.a $(LDLIBS)

fuzz: $(FUZZ_BINS)

# Run each driver for FUZZ_TIME seconds on a scratch copy of its corpus (new
# inputs stay in $(FUZZ_BUILD)/corpus; copy the interesting ones to fuzz/corpus).
fuzz-run: $(FUZZ_BINS)
	@set -e; for d in $(FUZZ_DRIVERS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$d $(FUZZ_BUILD)/artifacts/$$d; \
	  cp -n fuzz/corpus/$$d/* $(FUZZ_BUILD)/corpus/$$d/; \
	  echo "== $$d ($(FUZZ_TIME) s)"; \
	  $(FUZZ_BUILD)/$$d -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$d/ $(FUZZ_BUILD)/corpus/$$d; \
	done

.PHONY: fuzz-run
-include $(FUZZ_REPLAY_OBJ:.o=.d) $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_DRV_OBJ:.o=.d)

# ---- recommendations without HTTP (BENCHMARKS.md, stop 14) ----
$(BUILD)/rec_loop: bench/rec_loop.c $(BUILD)/librecd.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/librecd.a $(LDLIBS) $(LDSAN)

# ---- iALS training benchmark (bench/ials.md) ----
$(BUILD)/ials_bench: bench/ials_bench.c $(BUILD)/librecd.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/librecd.a $(LDLIBS) $(LDSAN)
