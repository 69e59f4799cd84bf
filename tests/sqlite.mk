# tests/sqlite.mk - SQLite's own TCL test suite, run natively and on ltxfs.
#
# Included by the top-level Makefile (uses BUILD, PYTHON, $(BUILD)/ltxfs).
#
#   make check-sqlite                 fetch + build testfixture, run the
#                                     default test files natively and on an
#                                     ltxfs mount, compare (docs/sqlite-tests.md)
#   make check-sqlite SQLITE_TESTS='wal*.test pager1.test'
#   make check-sqlite SQLITE_LOCKS=kernel  the mounts with fuse.locks: kernel
#   make check-sqlite-native          native half only (no ltxfs needed)
#   make sqlite-testfixture sqlite-speedtest1
#
# Debian's sqlite3 source package (the version of the installed
# libsqlite3-0) is fetched with a private apt configuration and unpacked into
# tests/.cache/, which is git-ignored and reused by later runs; SQLite itself
# is configured and built out of tree in tests/.cache/sqlite-build.

SQLITE_CACHE ?= $(abspath tests/.cache)
SQLITE_BUILD := $(SQLITE_CACHE)/sqlite-build
SQLITE_SRC_PATH := $(SQLITE_CACHE)/sqlite-src.path
TESTFIXTURE := $(SQLITE_BUILD)/testfixture
SPEEDTEST1 := $(SQLITE_BUILD)/speedtest1
TCL_CONFIG_DIR ?= /usr/lib/tcl8.6

# Every test file touching the pager, journals and WAL (46 files), less the
# slowest ones, which inject faults through SQLite's test VFS shims and so
# mostly test SQLite's error paths: walcrash3.test (10,000 simulated
# crashes, about 10 minutes natively), pagerfault.test, pagerfault2.test and
# walfault.test (1 to 5 minutes each through FUSE).  A leading '-' drops
# files.  Measured times: docs/sqlite-tests.md.
SQLITE_TESTS_ALL := wal*.test journal*.test pager*.test
SQLITE_TESTS ?= $(SQLITE_TESTS_ALL) -walcrash3.test -pagerfault.test \
	-pagerfault2.test -walfault.test
SQLITE_TEST_TIMEOUT ?= 300
# fuse.locks of the mounts: ltxfs (default) or kernel.
SQLITE_LOCKS ?= ltxfs
SQLITE_TEST_JOBS ?= 2
SQLITE_REPORT := $(SQLITE_CACHE)/sqlite-report.txt

.PHONY: check-sqlite-native sqlite-testfixture sqlite-speedtest1

# Always asks fetch-source.sh (instant once cached), but only rewrites the
# path file when it changes, so a current build is not redone.
$(SQLITE_SRC_PATH): sqlite-force | $(TEST_DEPS)
	@mkdir -p $(SQLITE_CACHE)
	@./tests/sqlite/fetch-source.sh $(SQLITE_CACHE) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(SQLITE_BUILD)/Makefile: $(SQLITE_SRC_PATH)
	rm -rf $(SQLITE_BUILD) && mkdir -p $(SQLITE_BUILD)
	cd $(SQLITE_BUILD) && "$$(cat $(SQLITE_SRC_PATH))/configure" \
		--with-tcl=$(TCL_CONFIG_DIR) --disable-shared \
		> configure.log 2>&1 || { tail -30 configure.log; exit 1; }

$(TESTFIXTURE): $(SQLITE_BUILD)/Makefile
	@echo "building SQLite testfixture (a few minutes; log in $(SQLITE_BUILD)/testfixture.log)"
	$(MAKE) -C $(SQLITE_BUILD) testfixture > $(SQLITE_BUILD)/testfixture.log 2>&1 \
		|| { tail -30 $(SQLITE_BUILD)/testfixture.log; exit 1; }

$(SPEEDTEST1): $(SQLITE_BUILD)/Makefile
	$(MAKE) -C $(SQLITE_BUILD) speedtest1 > $(SQLITE_BUILD)/speedtest1.log 2>&1 \
		|| { tail -30 $(SQLITE_BUILD)/speedtest1.log; exit 1; }

sqlite-force:

sqlite-testfixture: $(TESTFIXTURE)
sqlite-speedtest1: $(SPEEDTEST1)

SQLITE_RUN = $(PYTHON) tests/sqlite/run-tests.py --testfixture $(TESTFIXTURE) \
	--srcdir "$$(cat $(SQLITE_SRC_PATH))" --tests '$(SQLITE_TESTS)' \
	--timeout $(SQLITE_TEST_TIMEOUT) --jobs $(SQLITE_TEST_JOBS) \
	--workdir $(SQLITE_CACHE)/sqlite-run --report $(SQLITE_REPORT) \
	--locks $(SQLITE_LOCKS)

check-sqlite: $(TESTFIXTURE) $(BUILD)/ltxfs
	$(SQLITE_RUN) --ltxfs $(abspath $(BUILD)/ltxfs)

check-sqlite-native: $(TESTFIXTURE)
	$(SQLITE_RUN) --native-only
