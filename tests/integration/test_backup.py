"""test_backup.py - continuous backup and point-in-time restore (docs/backup.md).

A node with `backup.url` ships every committed transaction to the storage
(here a directory: file:///...); `ltxfs restore` rebuilds a database at any
TXID or time the backup holds, verified (checksum chain, PRAGMA
integrity_check), and `ltxfs backup list` shows the restorable range.

Checked against what the clients saw: after each acknowledged commit the
test records the node's position (NAME-pos) and the table's content; a
restore to that TXID (or to that commit's time) must give exactly that
content.  Across a failover, what a deposed primary shipped but the cluster
lost is superseded: never restored, and counted as lost by `backup list`.
"""

import itertools
import json
import os
import random
import shutil
import sqlite3
import subprocess
import time
import urllib.request

import pytest

import cluster as C
import ltxfs_helpers as H
from test_failover import lease_server, make_nodes, wait_primary

pytestmark = H.LTXFS_LOCKS_PASS_ONLY


def backup_config(store, sync="100ms", extra=""):
    """`store`: a directory (file://), or an S3 server (s3_server.S3Server),
    each test under a prefix of its own, with the endpoint, path-style
    addressing and the server's credentials."""
    if isinstance(store, str):
        return "backup:\n  url: \"file://%s\"\n  sync-interval: %s\n%s" % (store, sync, extra)
    return ("backup:\n  url: \"s3://%s/%s\"\n  endpoint: \"%s\"\n  force-path-style: true\n"
            "  access-key-id: \"%s\"\n  secret-access-key: \"%s\"\n  sync-interval: %s\n%s"
            % (store.bucket, "t%d" % next(_prefixes), getattr(store, "endpoint", store.url),
               store.access_key, store.secret_key, sync, extra))


_prefixes = itertools.count()


def backup_node(node_factory, tmp_path, name="node", extra="", s3=None):
    """A node backing up to tmp_path/store, or to `s3` (an S3 server)."""
    store = str(tmp_path / "store")
    os.makedirs(store, exist_ok=True)
    n = node_factory(name, extra_config=backup_config(s3 or store, extra=extra))
    n.store = None if s3 else store
    return n


@pytest.fixture(params=["file", "s3"])
def storage(request):
    """None for a directory (file://), else the module's S3 server."""
    return request.getfixturevalue("s3_server") if request.param == "s3" else None


def backup_list(node, name=None, check=True, config=None):
    args = ["backup", "list", "-config", config or node.config_path]
    if name:
        args += ["-name", name]
    cp = node.ltxfs(*args, check=check)
    rows = {}
    for line in cp.stdout.splitlines()[1:]:
        f = line.split()
        rows[f[0]] = {"first": int(f[1]), "last": int(f[2]), "snapshots": int(f[5]),
                      "objects": int(f[6]), "lost": int(f[7]), "bytes": int(f[8])}
    return rows


def wait_shipped(node, name, txid, timeout=30, config=None):
    """Until the backup of `name` reaches `txid`."""
    deadline = time.monotonic() + timeout
    while True:
        row = backup_list(node, name, config=config).get(name)
        if row and row["last"] >= txid:
            return row
        assert time.monotonic() < deadline, (
            "backup of %s did not reach TXID %d in %d s: %s\n%s"
            % (name, txid, timeout, row, node.log_tail()))
        time.sleep(0.1)


def restore(node, name, out, txid=None, timestamp=None, check=True, config=None):
    args = ["restore", "-config", config or node.config_path, "-name", name, "-o", out]
    if txid is not None:
        args += ["-txid", txid]
    if timestamp is not None:
        args += ["-timestamp", timestamp]
    return node.ltxfs(*args, check=check)


def content(path):
    c = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return c.execute("SELECT group_concat(id || ':' || v, ',') FROM "
                         "(SELECT * FROM t ORDER BY id)").fetchone()[0] or ""
    finally:
        c.close()


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t * 1000 % 1000)


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_restore_reaches_every_acknowledged_point(node_factory, tmp_path, mode, storage):
    """Every TXID a client saw acknowledged, and every commit time, restores
    to exactly the content the client saw then."""
    n = backup_node(node_factory, tmp_path, s3=storage).start()
    c = sqlite3.connect(n.path("app.db"), isolation_level=None)
    c.execute("PRAGMA journal_mode=%s" % mode)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    seen = []                       # (txid, time after the commit, content)
    for i in range(40):
        c.execute("INSERT INTO t(v) VALUES (?)", ("row%d-%s" % (i, "x" * (i * 50)),))
        if i % 7 == 3:
            c.execute("DELETE FROM t WHERE id = ?", (i // 2,))
        if i % 10 == 9:
            time.sleep(0.3)         # several uploads, several times
        seen.append((n.pos("app.db")[0], time.time(), content(n.path("app.db"))))
        time.sleep(0.003)           # commit times 1 ms apart at least (ms resolution)
    c.close()
    last = seen[-1][0]
    row = wait_shipped(n, "app.db", last)
    assert row["first"] == 1 and row["objects"] >= 2, row   # from the first TXID
    out = str(tmp_path / "r")
    os.makedirs(out)
    for k, (txid, _, want) in enumerate(seen):
        if k % 5 and k != len(seen) - 1:
            continue
        p = os.path.join(out, "tx%d.db" % txid)
        cp = restore(n, "app.db", p, txid=txid)
        assert "TXID %d " % txid in cp.stdout, cp.stdout
        assert content(p) == want, "restore to TXID %d" % txid
        assert H.integrity_check(p) == "ok"
    # by time: just after commit k, the content of commit k
    for k in (12, 25, len(seen) - 1):
        p = os.path.join(out, "time%d.db" % k)
        restore(n, "app.db", p, timestamp=rfc3339(seen[k][1]))
        assert content(p) == seen[k][2], "restore to the time of commit %d" % k
    # the newest point, and the refusals
    p = os.path.join(out, "newest.db")
    restore(n, "app.db", p)
    assert content(p) == seen[-1][2]
    # the node shows the backup's position
    db = [d for d in C.status(n)["databases"] if d["name"] == "app.db"][0]
    assert db["backup"]["txid"] == last and db["backup"]["shipping"], db
    assert C.metrics(n)["ltxfs_backup_txid{db=\"app.db\"}"] == last
    assert "backup at TXID %d" % last in n.ltxfs("status", "-config", n.config_path).stdout
    # /events has a line per shipped range (here: the position at connect)
    with urllib.request.urlopen("http://127.0.0.1:%d/events" % n.port, timeout=10) as r:
        lines = [json.loads(r.readline()) for _ in range(3)]
    backup_line = [line for line in lines if line["type"] == "backup"][0]
    assert (backup_line["db"], backup_line["from"], backup_line["txid"]) == ("app.db", 0, last)
    cp = restore(n, "app.db", os.path.join(out, "far.db"), txid=last + 100, check=False)
    assert cp.returncode == 1 and "reaches TXID %d" % last in cp.stderr, cp.stderr
    cp = restore(n, "app.db", p, check=False)          # never overwrites
    assert cp.returncode == 1 and "exists" in cp.stderr, cp.stderr
    cp = restore(n, "nope.db", os.path.join(out, "nope.db"), check=False)
    assert cp.returncode == 1 and "no backup" in cp.stderr, cp.stderr


def test_backup_continues_across_restarts_and_survives_a_damaged_object(node_factory,
                                                                        tmp_path):
    """A restart continues the stored history (a new epoch, no new snapshot
    needed); a damaged object is refused by restore with a clear error,
    never turned into a wrong database."""
    n = backup_node(node_factory, tmp_path).start()
    c = sqlite3.connect(n.path("a.db"), isolation_level=None)
    c.execute("PRAGMA journal_mode=wal")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(10):
        c.execute("INSERT INTO t(v) VALUES (?)", ("before%d" % i,))
    c.close()
    wait_shipped(n, "a.db", n.pos("a.db")[0])
    n.stop()
    n.start()
    c = sqlite3.connect(n.path("a.db"), isolation_level=None)
    for i in range(10):
        c.execute("INSERT INTO t(v) VALUES (?)", ("after%d" % i,))
    c.close()
    want = content(n.path("a.db"))
    row = wait_shipped(n, "a.db", n.pos("a.db")[0])
    assert row["snapshots"] == 0 and row["lost"] == 0, row   # continued, no snapshot
    markers = os.listdir(os.path.join(n.store, "a.db", "epoch"))
    assert len(markers) == 2, markers       # one per start
    p = str(tmp_path / "r.db")
    restore(n, "a.db", p)
    assert content(p) == want
    # flip one byte in the middle of the newest transaction object
    l0 = os.path.join(n.store, "a.db", "l0")
    newest = os.path.join(l0, sorted(os.listdir(l0))[-1])
    with open(newest, "r+b") as f:
        f.seek(os.path.getsize(newest) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x40]))
    cp = restore(n, "a.db", str(tmp_path / "bad.db"), check=False)
    assert cp.returncode == 1, cp.stdout
    assert "checksum" in cp.stderr or "damaged" in cp.stderr, cp.stderr
    assert not os.path.exists(str(tmp_path / "bad.db"))


def test_retention_deletes_what_no_restore_needs(node_factory, tmp_path):
    """With a short retention, old snapshots and transaction objects go; the
    newest point and every point inside the window stay restorable."""
    n = backup_node(node_factory, tmp_path,
                    extra="  snapshot-interval: 1s\n  retention: 2s\n").start()
    c = sqlite3.connect(n.path("a.db"), isolation_level=None)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    first = n.pos("a.db")[0]
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        c.execute("INSERT INTO t(v) VALUES ('x')")
        time.sleep(0.05)
    c.close()
    want = content(n.path("a.db"))
    last = n.pos("a.db")[0]
    wait_shipped(n, "a.db", last)
    # retention runs every retention/4: soon the oldest points are gone
    deadline = time.monotonic() + 20
    while backup_list(n, "a.db")["a.db"]["first"] <= first + 5:
        assert time.monotonic() < deadline, backup_list(n, "a.db")
        time.sleep(0.2)
    row = backup_list(n, "a.db")["a.db"]
    assert row["snapshots"] <= 6, row
    p = str(tmp_path / "r.db")
    restore(n, "a.db", p)
    assert content(p) == want
    cp = restore(n, "a.db", str(tmp_path / "old.db"), txid=first, check=False)
    assert cp.returncode == 1 and "no snapshot" in cp.stderr, cp.stderr


@pytest.fixture(scope="module")
def consul(tmp_path_factory):
    with lease_server("consul", str(tmp_path_factory.mktemp("consul"))) as c:
        yield c


def test_failover_continues_the_backup_and_never_restores_lost_writes(
        node_factory, tmp_path, consul):
    """Two candidates share one backup.  The primary ships writes its replica
    never received (the replica is down), then dies; the replica takes
    over from its older position.  The backup continues from there: a
    restore gives the new primary's history, never the lost writes, and
    `backup list` counts what was lost."""
    store = str(tmp_path / "store")
    os.makedirs(store)
    _, nodes = make_nodes(node_factory, consul, n=2)
    for nd in nodes:
        nd.extra_config = backup_config(store)
        nd.start()
    p = wait_primary(nodes)
    r = [nd for nd in nodes if nd is not p][0]
    c = sqlite3.connect(p.path("a.db"), timeout=10, isolation_level=None)
    c.execute("PRAGMA journal_mode=wal")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(20):
        c.execute("INSERT INTO t(v) VALUES (?)", ("kept%d" % i,))
    C.wait_converged(p, [r], ["a.db"])
    wait_shipped(p, "a.db", p.pos("a.db")[0])

    r.stop()                      # (a frozen replica would still get them from its socket)
    for i in range(10):
        c.execute("INSERT INTO t(v) VALUES (?)", ("lost%d" % i,))
    c.close()
    wait_shipped(p, "a.db", p.pos("a.db")[0])
    p.kill()
    r.start()
    assert wait_primary([r], timeout=30) is r
    c = sqlite3.connect(r.path("a.db"), timeout=10, isolation_level=None)
    for i in range(5):
        c.execute("INSERT INTO t(v) VALUES (?)", ("new%d" % i,))
    c.close()
    want = content(r.path("a.db"))
    assert "lost" not in want and "new4" in want
    row = wait_shipped(r, "a.db", r.pos("a.db")[0])
    assert row["lost"] >= 1, row
    out = str(tmp_path / "r.db")
    restore(r, "a.db", out)
    assert content(out) == want
    # a TXID inside the lost range now means the new primary's transaction
    lost_txid = r.pos("a.db")[0] - 2
    out2 = str(tmp_path / "r2.db")
    restore(r, "a.db", out2, txid=lost_txid)
    assert "lost" not in content(out2)


def test_encrypted_backup_shows_the_storage_nothing_and_refuses_a_wrong_key(
        node_factory, tmp_path):
    """With backup.encryption.key-file the storage holds ciphertext only: no
    database name, no page content, no checksum.  Restore needs the key,
    names a wrong one as such, and refuses a changed object."""
    key = str(tmp_path / "backup.key")
    with open(key, "w") as f:
        f.write(subprocess.run([H.binary(), "backup", "keygen"], check=True,
                               capture_output=True, text=True).stdout)
    os.chmod(key, 0o600)
    n = backup_node(node_factory, tmp_path, name="enc",
                    extra="  encryption:\n    key-file: \"%s\"\n" % key).start()
    c = sqlite3.connect(n.path("secret.db"), isolation_level=None)
    c.execute("PRAGMA journal_mode=wal")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(30):
        c.execute("INSERT INTO t(v) VALUES (?)", ("PLAINTEXT-MARKER-%d" % i,))
    c.close()
    want = content(n.path("secret.db"))
    txid, checksum = n.pos("secret.db")
    wait_shipped(n, "secret.db", txid)
    for root, dirs, files in os.walk(n.store):
        for name in dirs + files:
            assert "secret" not in name and "%016x" % checksum not in name, name
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            assert b"PLAINTEXT-MARKER" not in data and b"SQLite format 3" not in data, name
            assert b"secret.db" not in data, name
    assert "secret.db" in backup_list(n)                  # the sealed name is readable
    with open(key) as f:
        key_text = f.read().strip()
    assert key_text not in n.log_text() and key_text not in json.dumps(C.status(n))
    p = str(tmp_path / "r.db")
    restore(n, "secret.db", p)
    assert content(p) == want

    # another key: named as such, no file written
    other = str(tmp_path / "other.key")
    with open(other, "w") as f:
        f.write("%064x\n" % 12345)
    n.write_config(n.config_text().replace(key, other))
    cp = restore(n, "secret.db", str(tmp_path / "k.db"), check=False)
    assert cp.returncode == 1, cp.stdout
    # the directory is a keyed hash of the name: another key finds nothing
    assert "no backup" in cp.stderr or "another key" in cp.stderr, cp.stderr
    # no key at all
    n.write_config(n.config_text().replace("  encryption:\n    key-file: \"%s\"\n" % key, ""))
    assert "secret.db" not in backup_list(n)
    n.write_config()
    # a changed object
    objs = [os.path.join(r, f) for r, _, fs in os.walk(n.store) for f in fs if "/l0/" in
            os.path.join(r, f)]
    victim = max(objs)
    with open(victim, "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 1]))
    cp = restore(n, "secret.db", str(tmp_path / "t.db"), check=False)
    assert cp.returncode == 1 and "tampered" in cp.stderr, cp.stderr
    assert not os.path.exists(str(tmp_path / "t.db"))


def test_a_node_with_an_empty_data_directory_restores_everything_first(node_factory,
                                                                       tmp_path):
    """The whole cluster is lost: a new node with backup.restore-if-empty
    comes up with every database at the backup's newest point, and its
    history continues the backup's (older points stay restorable)."""
    a = backup_node(node_factory, tmp_path, name="old").start()
    want = {}
    for name, mode in (("one.db", "wal"), ("two.db", "delete")):
        c = sqlite3.connect(a.path(name), isolation_level=None)
        c.execute("PRAGMA journal_mode=%s" % mode)
        c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        for i in range(15):
            c.execute("INSERT INTO t(v) VALUES (?)", ("%s-%d" % (name, i),))
        c.close()
        want[name] = (a.pos(name), content(a.path(name)))
        wait_shipped(a, name, a.pos(name)[0])
    a.kill()                                # and its disk is gone
    b = backup_node(node_factory, tmp_path, name="new",
                    extra="  restore-if-empty: true\n").start()
    assert "restored 2 databases" in b.log_text(), b.log_tail()
    for name, (pos, text) in want.items():
        assert b.pos(name) == pos, name     # same TXID and checksum: the same history
        assert content(b.path(name)) == text
    c = sqlite3.connect(b.path("one.db"), isolation_level=None)
    c.execute("INSERT INTO t(v) VALUES ('after')")
    c.close()
    row = wait_shipped(b, "one.db", b.pos("one.db")[0])
    assert row["lost"] == 0, row
    p = str(tmp_path / "old-point.db")
    restore(b, "one.db", p, txid=want["one.db"][0][0])
    assert content(p) == want["one.db"][1]
    # a second start with data is not a restore
    b.stop()
    b.start()
    assert b.log_text().count("restored 2 databases") == 1


def test_compaction_makes_restores_read_few_objects(node_factory, tmp_path):
    """Levels 1 to 3 merge the transaction objects: a restore of the newest
    point reads a handful of objects, and every transaction stays
    restorable (the finer objects stay)."""
    n = backup_node(node_factory, tmp_path, extra=(
        "  l1-interval: 300ms\n  l2-interval: 900ms\n  l3-interval: 2s\n")).start()
    c = sqlite3.connect(n.path("a.db"), isolation_level=None)
    c.execute("PRAGMA journal_mode=wal")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    seen = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        c.execute("INSERT INTO t(v) VALUES (?)", ("v%d" % len(seen),))
        seen.append((n.pos("a.db")[0], content(n.path("a.db"))))
        time.sleep(0.02)
    c.close()
    wait_shipped(n, "a.db", seen[-1][0])
    levels = lambda: {d: len(os.listdir(os.path.join(n.store, "a.db", d)))
                      for d in os.listdir(os.path.join(n.store, "a.db"))}
    deadline = time.monotonic() + 20
    while levels().get("l3", 0) == 0:
        assert time.monotonic() < deadline, levels()
        time.sleep(0.2)
    assert levels()["l0"] >= 20, levels()
    p = str(tmp_path / "newest.db")
    cp = restore(n, "a.db", p)
    used = int(cp.stdout.split(" objects")[0].split("; ")[-1])
    assert used <= 12, (cp.stdout, levels())
    assert content(p) == seen[-1][1]
    for txid, want in seen[::17]:
        p = str(tmp_path / ("tx%d.db" % txid))
        restore(n, "a.db", p, txid=txid)
        assert content(p) == want, txid


def full_content(path):
    """Every table's rows and the schema: what a restore must reproduce."""
    c = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        out = [tuple(r) for r in c.execute("SELECT type, name, sql FROM sqlite_schema ORDER BY name")]
        for (name,) in c.execute("SELECT name FROM sqlite_schema WHERE type='table' ORDER BY name"):
            out.append((name, [tuple(r) for r in c.execute('SELECT * FROM "%s" ORDER BY 1' % name)]))
        return out
    finally:
        c.close()


@pytest.mark.deadline(300)
@pytest.mark.parametrize("mode,s3", [("wal", False), ("delete", False), ("wal", True)],
                         ids=["wal-file", "delete-file", "wal-s3"])
def test_point_in_time_under_a_mixed_workload(node_factory, tmp_path, mode, s3, request):
    """Inserts, updates, deletes, schema changes and VACUUM run; the content
    is recorded at 100 random moments; a restore to each moment's time and
    to its TXID gives exactly that content."""
    rnd = random.Random(14)
    n = backup_node(node_factory, tmp_path, extra=(
        "  l1-interval: 500ms\n  l2-interval: 1s\n  l3-interval: 2s\n"),
        s3=request.getfixturevalue("s3_server") if s3 else None).start()
    c = sqlite3.connect(n.path("w.db"), isolation_level=None)
    c.execute("PRAGMA journal_mode=%s" % mode)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER)")
    moments = []
    for step in range(600):
        op = rnd.random()
        if op < 0.45:
            c.execute("INSERT INTO t(v, n) VALUES (?, ?)", ("x" * rnd.randint(1, 3000), step))
        elif op < 0.65:
            c.execute("UPDATE t SET v = ?, n = n + 1 WHERE id % 7 = ?",
                      ("u" * rnd.randint(1, 500), rnd.randint(0, 6)))
        elif op < 0.8:
            c.execute("DELETE FROM t WHERE id % 11 = ?", (rnd.randint(0, 10),))
        elif op < 0.85:
            c.execute("CREATE TABLE IF NOT EXISTS s%d(a, b)" % (step % 5))
            c.execute("INSERT INTO s%d VALUES (?, ?)" % (step % 5), (step, "y" * 100))
        elif op < 0.88:
            c.execute("DROP TABLE IF EXISTS s%d" % rnd.randint(0, 4))
        elif op < 0.9:
            c.execute("CREATE INDEX IF NOT EXISTS i%d ON t(n)" % (step % 3))
        elif op < 0.92:
            c.execute("VACUUM")
        else:
            c.execute("BEGIN")
            for _ in range(rnd.randint(2, 20)):
                c.execute("INSERT INTO t(v, n) VALUES (?, ?)", ("b" * 200, -step))
            c.execute("COMMIT")
        if step % 6 == 0 and len(moments) < 100:
            moments.append((n.pos("w.db")[0], time.time(), full_content(n.path("w.db"))))
            time.sleep(0.003)
        if step % 100 == 99:
            time.sleep(0.6)                 # let compaction run in between
    c.close()
    wait_shipped(n, "w.db", n.pos("w.db")[0])
    assert len(moments) == 100
    for k, (txid, when, want) in enumerate(moments):
        p = str(tmp_path / ("tx%d.db" % k))
        restore(n, "w.db", p, txid=txid)
        assert full_content(p) == want, "TXID %d (moment %d)" % (txid, k)
        p = str(tmp_path / ("t%d.db" % k))
        restore(n, "w.db", p, timestamp=rfc3339(when))
        assert full_content(p) == want, "time %s (moment %d)" % (rfc3339(when), k)


def test_sigkill_of_the_primary_while_shipping_leaves_no_gap(node_factory, tmp_path, consul):
    """Writers run; the primary is killed while it ships; the new primary
    continues the backup.  Every TXID of the surviving history is
    restorable (no gap), and the newest point is the new primary's
    database, holding every acknowledged row it kept."""
    store = str(tmp_path / "store")
    os.makedirs(store)
    _, nodes = make_nodes(node_factory, consul, n=3)
    for nd in nodes:
        nd.extra_config = backup_config(store, sync="50ms")
        nd.start()
    p = wait_primary(nodes)
    c = sqlite3.connect(p.path("a.db"), timeout=10, isolation_level=None)
    c.execute("PRAGMA journal_mode=wal")
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(200):
        c.execute("INSERT INTO t(v) VALUES (?)", ("before%d" % i,))
    c.close()
    p.kill()                                  # while it ships the last of them
    survivors = [nd for nd in nodes if nd is not p]
    q = wait_primary(survivors, timeout=30)
    c = sqlite3.connect(q.path("a.db"), timeout=10, isolation_level=None)
    for i in range(50):
        c.execute("INSERT INTO t(v) VALUES (?)", ("after%d" % i,))
    c.close()
    want = content(q.path("a.db"))
    last = q.pos("a.db")[0]
    wait_shipped(q, "a.db", last)
    out = str(tmp_path / "newest.db")
    restore(q, "a.db", out)
    assert content(out) == want
    for txid in range(1, last + 1, 7):       # no gap anywhere in the history
        restore(q, "a.db", str(tmp_path / ("tx%d.db" % txid)), txid=txid)


def test_whole_cluster_lost_one_node_restores_the_others_follow(node_factory, tmp_path,
                                                               consul):
    store = str(tmp_path / "store")
    os.makedirs(store)
    key, nodes = make_nodes(node_factory, consul, n=2)
    for nd in nodes:
        nd.extra_config = backup_config(store)
        nd.start()
    p = wait_primary(nodes)
    c = sqlite3.connect(p.path("a.db"), timeout=10, isolation_level=None)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(30):
        c.execute("INSERT INTO t(v) VALUES (?)", ("row%d" % i,))
    c.close()
    want, pos = content(p.path("a.db")), p.pos("a.db")
    wait_shipped(p, "a.db", pos[0])
    for nd in nodes:                          # every node and its disk are gone
        nd.kill()
        shutil.rmtree(nd.data)
        os.makedirs(nd.data)
    first, second = nodes
    first.extra_config = backup_config(store, extra="  restore-if-empty: true\n")
    first.start()
    assert wait_primary([first], timeout=30) is first
    assert first.pos("a.db") == pos and content(first.path("a.db")) == want
    second.start()
    C.wait_converged(first, [second], ["a.db"])
    assert content(second.path("a.db")) == want


def test_an_encrypted_s3_backup_restores_and_keeps_its_secrets(node_factory, tmp_path,
                                                               s3_server):
    """Over S3 with encryption: the bytes the server stores hold no page, and
    neither the secret key nor the encryption key shows in the log, /status
    or the configuration dump."""
    key = str(tmp_path / "k.key")
    with open(key, "w") as f:
        f.write("%064x\n" % 0xC0FFEE)
    os.chmod(key, 0o600)
    n = backup_node(node_factory, tmp_path, s3=s3_server,
                    extra="  encryption:\n    key-file: \"%s\"\n" % key).start()
    c = sqlite3.connect(n.path("s.db"), isolation_level=None)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(20):
        c.execute("INSERT INTO t(v) VALUES (?)", ("PLAINTEXT-MARKER-%d" % i,))
    c.close()
    want = content(n.path("s.db"))
    wait_shipped(n, "s.db", n.pos("s.db")[0])
    p = str(tmp_path / "r.db")
    restore(n, "s.db", p)
    assert content(p) == want
    for root, _, files in os.walk(s3_server.work_dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                assert b"PLAINTEXT-MARKER" not in f.read(), name
    dump = n.ltxfs("status", "-config", n.config_path, "--json").stdout
    for secret in (s3_server.secret_key, "%064x" % 0xC0FFEE):
        assert secret not in n.log_text() and secret not in dump


def test_faults_between_node_and_storage_lose_nothing(node_factory, tmp_path, s3_server):
    """A proxy between the node and S3 answers 500s and 503s, resets
    connections and flips bits in uploads; commits go on, shipping retries
    and catches up, and the newest point restores to exactly the database."""
    from s3_server import S3FaultProxy
    with S3FaultProxy(s3_server.port) as proxy:
        s3_server.endpoint = proxy.url
        try:
            n = backup_node(node_factory, tmp_path, s3=s3_server).start()
        finally:
            del s3_server.endpoint
        direct = str(tmp_path / "direct.yml")     # the commands go around the proxy
        with open(n.config_path) as f, open(direct, "w") as g:
            g.write(f.read().replace(proxy.url, s3_server.url))
        c = sqlite3.connect(n.path("f.db"), isolation_level=None)
        c.execute("PRAGMA journal_mode=wal")
        c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        for round_ in range(4):
            proxy.fail(3, status=500, code="InternalError", message="We encountered an error")
            proxy.reset(2)
            proxy.corrupt(2, methods=("PUT",))
            proxy.fail(2, status=503)
            for i in range(25):
                c.execute("INSERT INTO t(v) VALUES (?)", ("r%d-%d" % (round_, i),))
            time.sleep(0.3)
        c.close()
        want = content(n.path("f.db"))
        wait_shipped(n, "f.db", n.pos("f.db")[0], timeout=60, config=direct)
        assert proxy.injected >= 4 * 9, proxy.injected
        p = str(tmp_path / "r.db")
        restore(n, "f.db", p, config=direct)
        assert content(p) == want
        assert C.metrics(n)["ltxfs_backup_upload_errors_total"] >= 1


def test_a_large_transaction_goes_up_in_parts(node_factory, tmp_path, s3_server):
    """An object above 64 MiB (here one 70 MiB transaction) is a multipart
    upload; it restores like any other."""
    n = backup_node(node_factory, tmp_path, s3=s3_server).start()
    c = sqlite3.connect(n.path("big.db"), isolation_level=None)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    c.execute("BEGIN")
    c.executemany("INSERT INTO t(v) VALUES (randomblob(4000))", [()] * (70 * 256))
    c.execute("COMMIT")
    c.close()
    n_before = len(s3_server.requests())
    wait_shipped(n, "big.db", n.pos("big.db")[0], timeout=120)
    assert any("uploadId=" in r["url"] for r in s3_server.requests()[n_before:])
    p = str(tmp_path / "r.db")
    restore(n, "big.db", p)
    assert H.sha256_file(p) is not None and H.integrity_check(p) == "ok"
    a = sqlite3.connect(p)
    b = sqlite3.connect(n.path("big.db"))
    assert a.execute("SELECT count(*), sum(length(v)) FROM t").fetchone() == \
        b.execute("SELECT count(*), sum(length(v)) FROM t").fetchone()
    a.close()
    b.close()
