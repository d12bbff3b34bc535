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

WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(WERROR),1)
WARN    += -Werror
endif
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Isrc $(PKG_CFLAGS)

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

$(BUILD)/recd: $(CLI_OBJ) $(BUILD)/librecd.a
	$(CC) $(LDSAN) -o $@ $(CLI_OBJ) $(BUILD)/librecd.a $(LDLIBS)

$(TEST_BIN): $(TEST_SRC) tests/unit/main.c tests/unit/unit.h $(BUILD)/librecd.a
	$(CC) $(CFLAGS) -Itests/unit -o $@ tests/unit/main.c $(TEST_SRC) $(BUILD)/librecd.a $(CHECK_LIBS) $(LDLIBS) $(LDSAN)

unit: $(TEST_BIN)
	$(TEST_BIN)

blackbox: $(BUILD)/recd
	RECD_BIN=$(abspath $(BUILD)/recd) python3 tests/blackbox/run.py

test: $(BUILD)/recd $(TEST_BIN)
	@tests/run $(BUILD)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
