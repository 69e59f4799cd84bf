"""test_scenarios.py - what SQLite does beyond plain commits.

VACUUM (shrink) and incremental vacuum, page size changes (and WAL mode's
refusal of them, compared with SQLite on a plain directory), every page
size from 512 to 65536, several databases at once (also in one ATTACHed
transaction), creating, deleting and re-creating a database, mmap_size > 0,
journal_size_limit (compared with a plain directory), and a database over
1 GiB (crossing SQLite's lock page).  After each scenario the replay
invariant holds (Node.check_replay).
"""

import errno
import hashlib
import os
import shutil
import sqlite3
import threading
import warnings

import pytest

import ltxfs_helpers as H
from ltxfs_helpers import assert_new_txids, new_db

MODES = H.JOURNAL_MODES


def table_digest(con, table="t"):
    h = hashlib.sha256()
    for row in con.execute("SELECT * FROM %s ORDER BY 1" % table):
        h.update(repr(row).encode())
    return h.hexdigest()


def page_count(con):
    return con.execute("PRAGMA page_count").fetchone()[0]


def fill(con, rows, size, k0=0, per_txn=500):
    for start in range(0, rows, per_txn):
        con.execute("BEGIN")
        con.executemany("INSERT INTO t(k, v) VALUES (?, randomblob(?))",
                        [(k0 + i, size) for i in range(start, min(rows, start + per_txn))])
        con.execute("COMMIT")


# ---- VACUUM ----------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_vacuum_shrinks(node, track_conn, mode):
    con, base = new_db(node, "v.db", mode, track_conn)
    fill(con, 3000, 1000)
    con.execute("DELETE FROM t WHERE k % 10 != 0")
    digest = table_digest(con)
    big = page_count(con)
    before = node.last_txid("v.db")
    con.execute("VACUUM")
    small = page_count(con)
    assert small < big // 4, (big, small)
    ents = assert_new_txids(node, "v.db", before, 1, "VACUUM in %s" % mode)
    assert ents[-1].commit == small, (ents[-1], small)
    assert table_digest(con) == digest
    con.execute("INSERT INTO t(k, v) VALUES (-1, 'after vacuum')")
    con.close()
    node.check_replay("v.db")
    assert H.integrity_check(node.path("v.db")) == "ok"


@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_incremental_vacuum(node, track_conn, mode):
    con, base = new_db(node, "iv.db", mode, track_conn, auto_vacuum="INCREMENTAL")
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    fill(con, 2000, 1500)
    con.execute("DELETE FROM t WHERE k % 4 != 0")
    free = con.execute("PRAGMA freelist_count").fetchone()[0]
    assert free > 100
    n0 = page_count(con)
    before = node.last_txid("iv.db")
    # (Python's sqlite3 steps this pragma only once; the CLI runs it fully.)
    H.sqlite_cli(node.path("iv.db"), "PRAGMA incremental_vacuum(50);")
    n1 = page_count(con)
    assert n1 == n0 - 50, (n0, n1)
    H.sqlite_cli(node.path("iv.db"), "PRAGMA incremental_vacuum;")
    n2 = page_count(con)
    assert n2 <= n0 - free and con.execute("PRAGMA freelist_count").fetchone()[0] == 0, (
        n0, n1, n2, free)
    ents = assert_new_txids(node, "iv.db", before, 2, "incremental_vacuum")
    assert (ents[-2].commit, ents[-1].commit) == (n1, n2)
    con.close()
    node.check_replay("iv.db")
    assert H.integrity_check(node.path("iv.db")) == "ok"


# ---- page sizes ----------------------------------------------------------------

@pytest.mark.parametrize("mode", H.ROLLBACK_MODES)
def test_page_size_change(node, track_conn, mode):
    con, base = new_db(node, "ps.db", mode, track_conn)
    fill(con, 1500, 700)
    digest = table_digest(con)
    for ps in (8192, 1024, 65536, 512, 4096):
        before = node.last_txid("ps.db")
        con.execute("PRAGMA page_size=%d" % ps)
        con.execute("VACUUM")
        assert con.execute("PRAGMA page_size").fetchone()[0] == ps
        ents = assert_new_txids(node, "ps.db", before, 1, "page size -> %d" % ps)
        assert ents[-1].commit == page_count(con)
        assert table_digest(con) == digest
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(3000))", (-ps,))
        digest = table_digest(con)
        con.close()
        node.check_replay("ps.db")
        assert H.integrity_check(node.path("ps.db")) == "ok"
        con = track_conn(H.connect(node.path("ps.db"), mode))


def _wal_page_size_attempt(path):
    """What SQLite does with a page size change in WAL mode at PATH."""
    con = H.connect(path, "wal")
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k, v)")
    con.executemany("INSERT INTO t(k, v) VALUES (?, randomblob(500))",
                    [(i,) for i in range(200)])
    result = []
    try:
        con.execute("PRAGMA page_size=8192")
        con.execute("VACUUM")
        result.append("vacuum ok")
    except sqlite3.Error as e:
        result.append("error %s" % e)
    result.append(con.execute("PRAGMA page_size").fetchone()[0])
    result.append(con.execute("PRAGMA journal_mode").fetchone()[0])
    result.append(con.execute("SELECT count(*) FROM t").fetchone()[0])
    con.close()
    return result


def test_page_size_change_in_wal_mode_as_native(node, tmp_path):
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    native = _wal_page_size_attempt(str(native_dir / "w.db"))
    mounted = _wal_page_size_attempt(node.path("w.db"))
    assert mounted == native
    node.check_replay("w.db")
    # The way that works: leave WAL, change, VACUUM, go back.
    con = H.connect(node.path("w.db"))
    digest = table_digest(con)
    assert con.execute("PRAGMA journal_mode=delete").fetchone()[0] == "delete"
    con.execute("PRAGMA page_size=16384")
    con.execute("VACUUM")
    assert con.execute("PRAGMA journal_mode=wal").fetchone()[0] == "wal"
    assert con.execute("PRAGMA page_size").fetchone()[0] == 16384
    assert table_digest(con) == digest
    con.execute("INSERT INTO t(k, v) VALUES (-1, 'x')")
    con.close()
    node.check_replay("w.db")


@pytest.mark.parametrize("mode", ["delete", "wal"])
@pytest.mark.parametrize("ps", [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536])
def test_page_sizes(node, track_conn, mode, ps):
    con, base = new_db(node, "p.db", mode, track_conn, page_size=ps)
    assert con.execute("PRAGMA page_size").fetchone()[0] == ps
    n = 0
    for i in range(25):
        size = (10, ps // 2, ps * 3, ps + 1)[i % 4]   # inline, overflow chains
        con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(?))", (i, size))
        n += 1
    con.execute("BEGIN")
    con.execute("UPDATE t SET v = randomblob(length(v) / 2 + 1) WHERE k % 3 = 0")
    con.execute("DELETE FROM t WHERE k % 5 = 0")
    con.execute("COMMIT")
    n += 1
    con.execute("VACUUM")
    n += 1
    assert_new_txids(node, "p.db", base, n, "page size %d, %s" % (ps, mode))
    con.close()
    ents = node.check_replay("p.db")
    assert os.path.getsize(node.path("p.db")) == ents[-1].commit * ps
    assert H.integrity_check(node.path("p.db")) == "ok"


# ---- several databases ---------------------------------------------------------

def test_two_databases(node, track_conn):
    a, base_a = new_db(node, "a.db", "wal", track_conn)
    b, base_b = new_db(node, "b.db", "delete", track_conn)
    for i in range(30):
        a.execute("INSERT INTO t(k, v) VALUES (?, randomblob(900))", (i,))
        if i % 3 == 0:
            b.execute("INSERT INTO t(k, v) VALUES (?, randomblob(2000))", (i,))
    assert_new_txids(node, "a.db", base_a, 30, "a.db")
    assert_new_txids(node, "b.db", base_b, 10, "b.db")
    names = set(os.listdir(node.mnt))
    assert {"a.db", "b.db"} <= names, names
    a.close()
    b.close()
    node.check_replay("a.db")
    node.check_replay("b.db")


@pytest.mark.parametrize("modes", [("delete", "delete"), ("wal", "wal"),
                                   ("persist", "wal")])
def test_attached_transaction(node, track_conn, modes):
    """One transaction over two ATTACHed databases (with two rollback
    journals SQLite writes a super-journal NAME-mjXXXXXXXX next to the main
    database).  Either it commits on both (one TXID each) or it fails with an
    error at the application and neither database changes; no stray names
    stay in the mount root."""
    a, base_a = new_db(node, "ma.db", modes[0], track_conn)
    b, base_b = new_db(node, "mb.db", modes[1], track_conn)
    b.close()
    a.execute("ATTACH DATABASE ? AS other", (node.path("mb.db"),))
    err = None
    try:
        a.execute("BEGIN")
        a.execute("INSERT INTO main.t(k, v) VALUES (1, randomblob(5000))")
        a.execute("INSERT INTO other.t(k, v) VALUES (2, randomblob(5000))")
        a.execute("COMMIT")
    except sqlite3.Error as e:
        err = e
        try:
            a.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    counts = (a.execute("SELECT count(*) FROM main.t").fetchone()[0],
              a.execute("SELECT count(*) FROM other.t").fetchone()[0])
    a.execute("DETACH DATABASE other")
    a.close()
    if err is None:
        assert counts == (1, 1)
        assert_new_txids(node, "ma.db", base_a, 1, "ma.db")
        assert_new_txids(node, "mb.db", base_b, 1, "mb.db")
    else:
        assert counts == (0, 0), ("multi-database commit failed (%s) but left "
                                  "rows %r" % (err, counts))
        assert_new_txids(node, "ma.db", base_a, 0, "ma.db after failed commit")
        assert_new_txids(node, "mb.db", base_b, 0, "mb.db after failed commit")
        warnings.warn("multi-database commit with %s refused: %s" % (modes, err))
    names = set(os.listdir(node.mnt))
    assert names == {"ma.db", "mb.db"} | (
        {"ma.db-journal", "mb.db-journal"} & names if "persist" in modes else set()), names
    node.check_replay("ma.db")
    node.check_replay("mb.db")


def test_many_databases_in_parallel(node):
    names = ["m%02d.db" % i for i in range(10)]
    errors = []

    def work(name, mode):
        try:
            con = H.connect(node.path(name), mode)
            con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k, v)")
            for i in range(40):
                con.execute("INSERT INTO t(k, v) VALUES (?, randomblob(1500))", (i,))
            con.close()
        except Exception as e:  # reported below
            errors.append("%s: %r" % (name, e))

    threads = [threading.Thread(target=work, args=(n, ("wal", "delete")[i % 2]))
               for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for i, n in enumerate(names):
        ents = node.check_replay(n)
        assert len(ents) == 41 + (1 if i % 2 == 0 else 0), (n, len(ents))


# ---- create and delete ---------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_create_delete_recreate(node, track_conn, mode):
    con, base = new_db(node, "d.db", mode, track_conn)
    fill(con, 100, 500)
    con.close()
    node.check_replay("d.db")
    for suffix in ("-journal", "-wal"):
        if os.path.exists(node.path("d.db" + suffix)):
            os.remove(node.path("d.db" + suffix))
    os.remove(node.path("d.db"))
    names = os.listdir(node.mnt)
    assert not [n for n in names if n.startswith("d.db")], names
    assert not os.path.exists(node.path("d.db"))
    assert not os.path.exists(node.backing("d.db"))
    # the delete is logged, then the database gives everything back
    assert "d.db" not in os.listdir(os.path.join(node.data, "dbs"))

    # A deleted database stays deleted across a restart.
    node.restart()
    names = os.listdir(node.mnt)
    assert not [n for n in names if n.startswith("d.db")], names

    # Re-create it: a fresh, empty database, and the log continues.
    con = track_conn(H.connect(node.path("d.db"), mode))
    with pytest.raises(sqlite3.OperationalError):
        con.execute("SELECT count(*) FROM t")
    con.execute("CREATE TABLE t2(x)")
    con.executemany("INSERT INTO t2 VALUES (?)", [(i,) for i in range(10)])
    con.close()
    ents = node.check_replay("d.db")
    assert [e.txid for e in ents] == list(range(1, len(ents) + 1))
    node.restart()
    assert H.sqlite_cli(node.path("d.db"), "SELECT sum(x) FROM t2;").stdout.strip() == "45"
    node.check_replay("d.db")


def test_delete_and_recreate_other_mode(node, track_conn):
    """Delete a WAL database and create a rollback-mode one with the same name
    and a different page size."""
    con, base = new_db(node, "x.db", "wal", track_conn)
    fill(con, 50, 3000)
    con.close()
    os.remove(node.path("x.db"))
    con = track_conn(H.connect(node.path("x.db"), "delete", page_size=1024))
    con.execute("CREATE TABLE y(v)")
    con.execute("INSERT INTO y VALUES (randomblob(5000))")
    assert con.execute("PRAGMA page_size").fetchone()[0] == 1024
    con.close()
    node.check_replay("x.db")


# ---- mmap ----------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_mmap(node, track_conn, mode):
    mm = 268435456
    con, base = new_db(node, "mm.db", mode, track_conn, mmap_size=mm)
    assert con.execute("PRAGMA mmap_size").fetchone()[0] == mm, "mmap not enabled"
    reader = track_conn(H.connect(node.path("mm.db"), mmap_size=mm))
    n = 0
    for i in range(20):
        con.execute("BEGIN")
        con.executemany("INSERT INTO t(k, v) VALUES (?, randomblob(?))",
                        [(i * 100 + j, 200 + 50 * j) for j in range(50)])
        con.execute("UPDATE t SET v = randomblob(100) WHERE k % 17 = ?", (i % 17,))
        con.execute("COMMIT")
        n += 1
        assert table_digest(reader) == table_digest(con), "reader sees other data (round %d)" % i
    # A writer in another process (the CLI, with mmap too); both readers see it.
    H.sqlite_cli(node.path("mm.db"),
                 "PRAGMA mmap_size=%d; UPDATE t SET v = zeroblob(300) WHERE k < 500;"
                 "DELETE FROM t WHERE k BETWEEN 600 AND 900;" % mm)
    n += 2
    assert (con.execute("SELECT count(*) FROM t WHERE v = zeroblob(300)").fetchone()[0]
            == con.execute("SELECT count(*) FROM t WHERE k < 500").fetchone()[0] > 0)
    assert table_digest(reader) == table_digest(con)
    con.execute("VACUUM")   # the mapped file shrinks
    n += 1
    assert table_digest(reader) == table_digest(con)
    assert_new_txids(node, "mm.db", base, n, "mmap in %s" % mode)
    assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reader.close()
    con.close()
    node.check_replay("mm.db")


# ---- journal_size_limit --------------------------------------------------------

def _journal_limit_workload(path, mode, limit):
    """Run a fixed workload; return the -journal/-wal size after each step."""
    suffix = "-wal" if mode == "wal" else "-journal"
    con = H.connect(path, mode, journal_size_limit=limit, wal_autocheckpoint=50)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
    sizes = []

    def size():
        try:
            return os.path.getsize(path + suffix)
        except FileNotFoundError:
            return None
    for step in range(6):
        con.execute("BEGIN")
        con.executemany("INSERT INTO t(v) VALUES (zeroblob(?))",
                        [(3000 + (step * 7 + j) % 500,) for j in range(600)])
        con.execute("UPDATE t SET v = zeroblob(10) WHERE id % 3 = ?", (step % 3,))
        con.execute("COMMIT")
        sizes.append(size())
        con.execute("INSERT INTO t(v) VALUES ('small')")
        sizes.append(size())
        if mode == "wal":
            con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            con.execute("INSERT INTO t(v) VALUES ('after checkpoint')")
            sizes.append(size())
    digest = table_digest(con)
    con.close()
    return sizes, digest


@pytest.mark.parametrize("mode", ["persist", "truncate", "wal"])
def test_journal_size_limit_as_native(node, tmp_path, mode):
    limit = 65536
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    native, _ = _journal_limit_workload(str(native_dir / "j.db"), mode, limit)
    mounted, _ = _journal_limit_workload(node.path("j.db"), mode, limit)
    assert mounted == native, "journal sizes differ from a plain directory"
    if mode != "wal":
        assert max(mounted) <= limit, mounted
    ents = node.check_replay("j.db")
    per_step = 3 if mode == "wal" else 2
    assert len(ents) == (1 if mode == "wal" else 0) + 1 + 6 * per_step, len(ents)


# ---- a database over 1 GiB -------------------------------------------------------

def read_rchar(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/%d/io" % pid)


@pytest.mark.deadline(900)
@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_database_over_1gib(node, track_conn, mode):
    """1.15 GiB of 64 KiB pages: the database crosses SQLite's lock page (the
    page holding byte 0x40000000, page 16385, never written).  Zero blobs
    fill the first GiB quickly; random blobs cover the lock page region."""
    ps = 65536
    lock_pgno = 0x40000000 // ps + 1
    node.data_config = "  retention-bytes: 0\n"   # the test checks every TXID
    node.restart()
    con, base = new_db(node, "big.db", mode, track_conn, page_size=ps,
                       synchronous="OFF", cache_size=-65536)
    con.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB)")
    n = 1
    mib = 1 << 20
    for first in range(1, 1151, 128):
        last = min(first + 127, 1150)
        blob = "zeroblob(%d)" % mib if last <= 960 else "randomblob(%d)" % mib
        con.execute("WITH RECURSIVE c(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM c "
                    "WHERE x < ?) INSERT INTO big SELECT x, %s FROM c" % blob,
                    (first, last))
        n += 1
    pages = page_count(con)
    assert pages * ps > 0x40000000 + 64 * mib, pages
    assert lock_pgno < pages
    assert_new_txids(node, "big.db", base, n, "filling 1.15 GiB")
    con.execute("INSERT INTO big VALUES (2000, 'small last transaction')")
    n += 1
    around = con.execute("SELECT id, length(b), hex(substr(b, 1000, 8)) FROM big "
                         "WHERE id BETWEEN 1000 AND 1040 ORDER BY id").fetchall()
    con.close()

    # A clean restart must not re-read the whole database (persisted state).
    node.restart()
    rchar = read_rchar(node.pid())
    assert rchar < 64 * mib, ("daemon read %d bytes at a clean start of a %d-byte "
                              "database" % (rchar, pages * ps))

    con = track_conn(H.connect(node.path("big.db")))
    assert con.execute("SELECT id, length(b), hex(substr(b, 1000, 8)) FROM big "
                       "WHERE id BETWEEN 1000 AND 1040 ORDER BY id").fetchall() == around
    before = node.last_txid("big.db")
    con.execute("UPDATE big SET b = randomblob(%d) WHERE id BETWEEN 1010 AND 1030" % mib)
    con.execute("DELETE FROM big WHERE id BETWEEN 100 AND 140")
    assert_new_txids(node, "big.db", before, 2, "updates around the lock page")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    node.check_replay("big.db")
    with open(node.path("big.db"), "rb") as f:
        f.seek((lock_pgno - 1) * ps)
        assert f.read(ps) == bytes(ps), "the lock page is not all zeros"
    # Free the disk space (about 3.5 GiB) now that the test passed.
    node.stop()
    shutil.rmtree(node.data)


# ---- WAL files SQLite did not write itself ----------------------------------

def _wal_checksum(data, s1=0, s2=0):
    """SQLite's WAL checksum, little-endian words (magic 0x377f0682)."""
    words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
    for i in range(0, len(words), 2):
        s1 = (s1 + words[i] + s2) & 0xFFFFFFFF
        s2 = (s2 + words[i + 1] + s1) & 0xFFFFFFFF
    return s1, s2


def _crafted_wal(page_size, pgno, db_pages, body):
    """A WAL of one committed frame (what SQLite's wal-18.2 writes by hand)."""
    be = lambda *v: b"".join(x.to_bytes(4, "big") for x in v)
    hdr = be(0x377F0682, 3007000, page_size, 1234, 22, 23)
    c1, c2 = _wal_checksum(hdr)
    hdr += be(c1, c2)
    fhdr = be(pgno, db_pages, 22, 23)
    c1, c2 = _wal_checksum(fhdr + body, c1, c2)
    return hdr + fhdr + be(c1, c2) + body


def _wal_page_size_differs(dirpath, page_size):
    """A 1024-byte-page WAL database opened with a WAL of another page size:
    what SQLite reports (rows or error, integrity_check)."""
    path = os.path.join(dirpath, "x.db")
    con = H.connect(path, "wal", page_size=1024)
    con.execute("CREATE TABLE t1(a, b)")
    con.execute("INSERT INTO t1 VALUES (1, 2), (3, 4)")
    con.close()                       # checkpointed, -wal removed, header says WAL
    body = bytes((i * 7 + 3) & 0xFF for i in range(page_size))
    with open(path + "-wal", "wb") as f:
        f.write(_crafted_wal(page_size, 2, 5, body))
    out = []
    con = sqlite3.connect(path, isolation_level=None, timeout=10)
    for sql in ("SELECT * FROM t1", "PRAGMA integrity_check", "PRAGMA page_size"):
        try:
            out.append(con.execute(sql).fetchall())
        except sqlite3.Error as e:
            out.append("error: %s" % e)
    con.close()
    return out


@pytest.mark.parametrize("page_size", [512, 4096])
def test_wal_with_other_page_size_as_native(node, tmp_path, page_size):
    """SQLite reads a database in its WAL's page size: ltxfs logs that as a
    full image, keeps serving the database and can delete and reuse it."""
    native = _wal_page_size_differs(str(tmp_path), page_size)
    mounted = _wal_page_size_differs(node.mnt, page_size)
    assert mounted == native
    assert "not served" not in node.log_text()
    node.check_replay("x.db")
    os.remove(node.path("x.db"))
    con = H.connect(node.path("x.db"), "wal")
    con.execute("CREATE TABLE t(x)")
    con.close()
    node.check_replay("x.db")


def test_wal_rewrite_of_committed_frames(node, track_conn):
    """Bytes of committed WAL frames may be written again unchanged (whole
    sector writes do that); a change to them is refused with EIO and the
    database stays served, its WAL still matching the log."""
    con, _ = new_db(node, "rw.db", "wal", track_conn)
    con.execute("INSERT INTO t(k, v) VALUES (1, randomblob(3000))")
    pos = node.pos("rw.db")
    wal = node.path("rw.db-wal")
    size = os.path.getsize(wal)
    assert size > 4096
    fd = os.open(wal, os.O_RDWR)
    try:
        old = os.pread(fd, 512, size - 512 - 100)
        assert os.pwrite(fd, old, size - 512 - 100) == 512
        with pytest.raises(OSError) as ei:
            os.pwrite(fd, bytes(b ^ 0xFF for b in old), size - 512 - 100)
        assert ei.value.errno == errno.EIO
        assert os.pread(fd, 512, size - 512 - 100) == old
    finally:
        os.close(fd)
    assert node.pos("rw.db") == pos
    con.execute("INSERT INTO t(k, v) VALUES (2, 'after')")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    node.check_replay("rw.db")


@pytest.mark.parametrize("where", ["header", "frame"])
def test_hand_edited_wal_copy_as_native(node, tmp_path, where):
    """A WAL copied in by hand and then damaged by one byte (SQLite's
    walslow-3): SQLite ignores the damaged WAL, and so does the log; writes
    to the copy are never refused."""
    def run(dirpath):
        src = os.path.join(str(tmp_path), "src.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(src + suffix):
                os.remove(src + suffix)
        con = H.connect(src, "delete", page_size=1024, synchronous="NORMAL")
        con.execute("CREATE TABLE t1(a, b)")
        con.execute("INSERT INTO t1 VALUES (1, randomblob(300)), (2, randomblob(300))")
        assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        con.execute("INSERT INTO t1 VALUES (3, randomblob(300))")
        with open(src + "-wal", "rb") as f:
            wal = f.read()
        with open(src, "rb") as f:
            db = f.read()
        con.close()
        path = os.path.join(dirpath, "c.db")
        with open(path, "wb") as f:
            f.write(db)
        with open(path + "-wal", "wb") as f:
            f.write(wal)
        off = 5 if where == "header" else 32 + 24 + 100
        with open(path + "-wal", "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([(b[0] + 1) & 0xFF]))
        c = sqlite3.connect(path, isolation_level=None)
        rows = [r[0] for r in c.execute("SELECT a FROM t1 ORDER BY a")]
        c.close()
        return rows

    native_dir = tmp_path / "native"
    native_dir.mkdir()
    assert run(str(native_dir)) == [1, 2]
    assert run(node.mnt) == [1, 2]
    con = H.connect(node.path("c.db"))
    con.execute("INSERT INTO t1 VALUES (4, 'x')")
    assert [r[0] for r in con.execute("SELECT a FROM t1 ORDER BY a")] == [1, 2, 4]
    con.close()
    node.check_replay("c.db")
