# tests/bench.mk - write benchmarks, native directory vs ltxfs mount.
#
# Included by the top-level Makefile after tests/sqlite.mk (uses its
# speedtest1 build).  `make bench` prints a markdown table and writes it to
# $(BUILD)/bench-results.md; `make bench-native` measures the plain
# directory only.  Method and targets: docs/benchmarks.md.
#
#   BENCH_ARGS='--repeat 5 --seconds 10'  passes options to tests/bench/bench.py
#   REPL_BENCH_ARGS='--snapshot-mib 256'   to tests/bench/replication_bench.py

INSERT_BENCH := $(BUILD)/bench/insert_bench
BENCH_ARGS ?=

.PHONY: bench-native bench-replication bench-failover bench-transfer bench-backup bench-proxy

$(INSERT_BENCH): tests/bench/insert_bench.c $(BUILD)/config.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(SANITIZE) -lsqlite3

BENCH_RUN = $(PYTHON) tests/bench/bench.py --speedtest1 $(SPEEDTEST1) \
	--insert-bench $(INSERT_BENCH) --workdir $(BUILD)/bench-run \
	--out $(BUILD)/bench-results.md $(BENCH_ARGS)

bench: $(SPEEDTEST1) $(INSERT_BENCH) $(BUILD)/ltxfs
	$(BENCH_RUN) --ltxfs $(abspath $(BUILD)/ltxfs)
	$(MAKE) bench-replication
	$(MAKE) bench-failover
	$(MAKE) bench-transfer
	$(MAKE) bench-backup
	$(MAKE) bench-proxy

# Lag, snapshot speed, primary speed with replicas (tests/bench/replication_bench.py);
# lag and snapshot side by side over plain HTTP and over HTTPS + token
# (REPL_BENCH_ARGS="--tls tls" for one of them only).
REPL_BENCH_ARGS ?=
bench-replication: $(INSERT_BENCH) $(BUILD)/ltxfs $(TEST_DEPS)
	$(PYTHON) tests/bench/replication_bench.py --ltxfs $(abspath $(BUILD)/ltxfs) \
		--insert-bench $(INSERT_BENCH) --workdir $(BUILD)/bench-run/replication \
		--out $(BUILD)/bench-replication.md $(REPL_BENCH_ARGS)

# The HTTP proxy: its overhead, a forwarded write across 80 ms, read-your-writes
# at 100 writes/s (tests/bench/proxy_bench.py).
bench-proxy: $(BUILD)/ltxfs $(TEST_DEPS)
	$(PYTHON) tests/bench/proxy_bench.py --ltxfs $(abspath $(BUILD)/ltxfs) \
		--workdir $(BUILD)/bench-run/proxy --out $(BUILD)/bench-proxy.md

# Write unavailability for a clean stop, a crash and a hand-off, with a real
# Consul and a real etcd (tests/bench/failover_bench.py).
# FAILOVER_BENCH_ARGS='--runs 3 --backends etcd'
FAILOVER_BENCH_ARGS ?=
bench-failover: $(BUILD)/ltxfs $(BUILD)/tools/bin/consul $(TEST_DEPS)
	LTXFS_CONSUL_BIN=$(abspath $(BUILD)/tools/bin/consul) \
		$(PYTHON) tests/bench/failover_bench.py --ltxfs $(abspath $(BUILD)/ltxfs) \
		--workdir $(BUILD)/bench-run/failover --out $(BUILD)/bench-failover.md \
		$(FAILOVER_BENCH_ARGS)

# ltxfs import / export against sqlite3's own .backup (tests/bench/transfer_bench.py).
# TRANSFER_BENCH_ARGS='--mib 1024 --repeat 3'
TRANSFER_BENCH_ARGS ?=
bench-transfer: $(BUILD)/ltxfs $(TEST_DEPS)
	$(PYTHON) tests/bench/transfer_bench.py --ltxfs $(abspath $(BUILD)/ltxfs) \
		--workdir $(BUILD)/bench-run/transfer --out $(BUILD)/bench-transfer.md \
		$(TRANSFER_BENCH_ARGS)

# Continuous backup: lag at 100 and 1,000 tx/s, restore against a plain
# download, objects per hour (tests/bench/backup_bench.py).
# BACKUP_BENCH_ARGS='--mib 256 --seconds 10'
BACKUP_BENCH_ARGS ?=
bench-backup: $(BUILD)/ltxfs $(S3RVER) $(TEST_DEPS)
	LTXFS_S3RVER=$(abspath $(S3RVER)) $(PYTHON) tests/bench/backup_bench.py --ltxfs $(abspath $(BUILD)/ltxfs) \
		--workdir $(BUILD)/bench-run/backup --out $(BUILD)/bench-backup.md \
		$(BACKUP_BENCH_ARGS)

bench-native: $(SPEEDTEST1) $(INSERT_BENCH)
	$(BENCH_RUN) --native-only

# Many databases on one node: creation cost per database (first vs last
# batch of 200), descriptors, memory and disk per database, replication of
# one write in each to two replicas, restart times (tests/bench/scale_bench.py).
# SCALE_BENCH_ARGS='--databases 2000 --replicas 2'
SCALE_BENCH_ARGS ?=
.PHONY: bench-scale
bench-scale: $(BUILD)/ltxfs $(TEST_DEPS)
	$(PYTHON) tests/bench/scale_bench.py --ltxfs $(abspath $(BUILD)/ltxfs) \
		--workdir $(BUILD)/bench-run/scale --out $(BUILD)/bench-scale.md \
		$(SCALE_BENCH_ARGS)

# Replica lag under 50 point-lookup readers while the primary inserts at full
# speed (tests/bench/readload_bench.py).  READLOAD_BENCH_ARGS='--mode delete --seconds 30'
READLOAD_BENCH_ARGS ?=
.PHONY: bench-readload
bench-readload: $(BUILD)/ltxfs $(TEST_DEPS)
	$(PYTHON) tests/bench/readload_bench.py --ltxfs $(abspath $(BUILD)/ltxfs) \
		--workdir $(BUILD)/bench-run/readload --out $(BUILD)/bench-readload.md \
		$(READLOAD_BENCH_ARGS)
