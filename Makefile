# ltxfs build.  `make` builds build/ltxfs; `make run` mounts a single node;
# `make check` runs every test; see README.md.
#
# The first time, the setup step (deploy/install-deps.sh) installs the
# Debian packages building and running need, then records compiler flags in
# $(BUILD)/config.mk.  The test targets first install the test tools too
# (deploy/install-deps.sh --test, once per build directory: $(TEST_DEPS)).

BUILD ?= build
OPT ?= -O2
SANITIZE ?=
CC ?= cc
PYTHON ?= /usr/bin/python3

PKGS := fuse3 sqlite3 libcurl libmicrohttpd libxxhash yaml-0.1 jansson libsystemd libsodium gnutls \
	libxml-2.0

-include $(BUILD)/config.mk

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -g $(OPT) \
	$(SANITIZE) -I. $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(SANITIZE) $(PKG_LIBS) -lpthread $(LDFLAGS)

# Every module is a folder; cmd/main.c is the only file not in the library.
LIB_SRCS := $(sort $(wildcard base/*.c ltx/*.c config/*.c db/*.c fs/*.c \
	lease/*.c replica/*.c net/*.c node/*.c backup/*.c proxy/*.c cmd/*.c))
LIB_SRCS := $(filter-out cmd/main.c,$(LIB_SRCS))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all setup run check check-unit check-integration check-faults check-sync-failover \
	check-proxy check-asan \
	check-valgrind check-sqlite bench fuzz clean FORCE

all: $(BUILD)/ltxfs

$(BUILD)/config.mk: deploy/install-deps.sh
	@mkdir -p $(BUILD)
	./deploy/install-deps.sh
	@echo "PKG_CFLAGS := $$(pkg-config --cflags $(PKGS))" > $@.tmp
	@echo "PKG_LIBS := $$(pkg-config --libs $(PKGS))" >> $@.tmp
	@mv $@.tmp $@

setup: $(BUILD)/config.mk

# After config.mk, so that two apt-get never run at once.
TEST_DEPS := $(BUILD)/test-deps
$(TEST_DEPS): deploy/install-deps.sh $(BUILD)/config.mk
	./deploy/install-deps.sh --test
	@touch $@

# The compile flags are a prerequisite too: a build directory reused with
# other OPT/SANITIZE/CFLAGS is rebuilt, not silently mixed.
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CFLAGS_ALL) | $(LDLIBS_ALL)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

FORCE:

# Unit test objects are not intermediates to delete after each run.
.SECONDARY:

$(BUILD)/obj/%.o: %.c $(BUILD)/config.mk $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libltxfs.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/ltxfs: $(BUILD)/obj/cmd/main.o $(BUILD)/libltxfs.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/obj/tests/unit/unit.o \
		$(BUILD)/libltxfs.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# Programs the integration tests drive (tests/integration/*.c).
ITEST_BINS := $(BUILD)/tests/lease_driver $(BUILD)/tests/s3_driver

$(BUILD)/tests/lease_driver: $(BUILD)/obj/tests/integration/lease_driver.o $(BUILD)/libltxfs.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/s3_driver: $(BUILD)/obj/tests/integration/s3_driver.o $(BUILD)/libltxfs.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# The real Consul, from Debian 11's archive (tests/tools/fetch-consul.sh).
$(BUILD)/tools/bin/consul: tests/tools/fetch-consul.sh | $(TEST_DEPS)
	./tests/tools/fetch-consul.sh $(abspath $(BUILD)/tools)

# s3rver, an S3 server in Node.js, from the npm registry (tests/tools/fetch-s3rver.sh).
S3RVER := $(BUILD)/tools/s3rver/node_modules/.bin/s3rver
$(S3RVER): tests/tools/fetch-s3rver.sh | $(TEST_DEPS)
	./tests/tools/fetch-s3rver.sh $(abspath $(BUILD)/tools/s3rver)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- running ---------------------------------------------------------------

run: $(BUILD)/ltxfs
	./deploy/run-local.sh $(BUILD)/ltxfs

# ---- tests -----------------------------------------------------------------

check: check-unit check-integration

check-unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done
	./tests/tools/db_layers.sh $(BUILD)/obj/db

# The whole suite runs twice: locks kept by ltxfs (the default) and by the
# kernel (fuse.locks: kernel), whose commit capture has no lock events.
ITEST_ENV = LTXFS_BIN=$(abspath $(BUILD)/ltxfs) LTXFS_TEST_BINS=$(abspath $(BUILD)/tests) \
	LTXFS_CONSUL_BIN=$(abspath $(BUILD)/tools/bin/consul) LTXFS_S3RVER=$(abspath $(S3RVER))

# test_sync_failover.py runs 2 rounds per backend and mode here (about 4 minutes);
# check-sync-failover runs the 20 rounds of the acceptance.
SYNC_ROUNDS ?= 2

check-integration: $(BUILD)/ltxfs $(ITEST_BINS) $(BUILD)/tools/bin/consul $(S3RVER) $(TEST_DEPS)
	LTXFS_SYNC_ROUNDS=$(SYNC_ROUNDS) $(ITEST_ENV) $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)
	LTXFS_ITEST_LOCKS=kernel $(ITEST_ENV) $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# Faults and scale (tests/faults/): full disks, SIGKILL at each step of the
# write path, exhausted descriptors, oversized requests, each with a checker
# that every acknowledged write is still there.  Root (tmpfs mounts).
check-faults: $(BUILD)/ltxfs $(ITEST_BINS) $(BUILD)/tools/bin/consul $(S3RVER) $(TEST_DEPS)
	$(ITEST_ENV) $(PYTHON) -m pytest -q tests/faults $(PYTEST_ARGS)

# Synchronous replication across 20 failovers per scenario and backend
# (Consul and etcd): no acknowledged write lost; the same rounds in async
# mode print how many are lost (about 30 minutes).
check-sync-failover: $(BUILD)/ltxfs $(ITEST_BINS) $(BUILD)/tools/bin/consul $(TEST_DEPS)
	LTXFS_SYNC_ROUNDS=20 $(ITEST_ENV) $(PYTHON) -m pytest -q -s \
		tests/integration/test_sync_failover.py $(PYTEST_ARGS)

# The proxy at the acceptance's sizes: read-your-writes across 80 ms 1,000 times,
# a 200 MB upload (make check: 100 rounds, 20 MB).
check-proxy: $(BUILD)/ltxfs $(ITEST_BINS) $(BUILD)/tools/bin/consul $(TEST_DEPS)
	LTXFS_PROXY_ROUNDS=1000 LTXFS_PROXY_UPLOAD_MB=200 $(ITEST_ENV) $(PYTHON) -m pytest -q \
		tests/integration/test_proxy.py $(PYTEST_ARGS)

check-asan:
	$(MAKE) BUILD=build-asan OPT=-O1 \
		SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		check

check-valgrind: $(UNIT_BINS) $(TEST_DEPS)
	@set -e; for t in $(UNIT_BINS); do echo "== valgrind $$t"; \
		valgrind -q --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect $$t; done

include tests/sqlite.mk
include tests/bench.mk
include tests/fuzz.mk

clean:
	rm -rf build build-asan build-fuzz
