"""test_errors.py - damage is detected and reported, never served as healthy.

- A damaged newest transaction in the log (bit flips in page data, header or
  trailer; a truncated segment) is detected at start: the daemon either
  refuses to start with an error naming the database, or starts, logs an
  error naming it and does not serve it (reads fail) while other databases
  are served.  Damage in an older record is found by `ltxfs log verify` and
  `ltxfs log replay`.
- A database file modified by hand while the daemon was stopped (cleanly or
  by SIGKILL) is detected at start with the database's name and the log
  position.
- `ltxfs ltx verify` and `ltxfs ltx dump` reject truncated, extended,
  bit-flipped and wrongly checksummed LTX files with a message, without
  crashing.
- Bad configs (unknown keys, bad values, missing required keys, YAML syntax
  errors) are rejected with the key's name and a non-zero exit status.
"""

import json
import os
import re
import sqlite3
import urllib.error
import urllib.request

import pytest

import ltxfs_helpers as H


def make_db(node, name, mode, n=20, page_size=4096):
    con = H.connect(node.path(name), mode, page_size=page_size)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    for i in range(n):
        con.execute("INSERT INTO t(v) VALUES (randomblob(?))", (300 + i * 97,))
    con.close()


def flip(path, offset, mask=0x01):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        assert len(b) == 1, "offset %d beyond %s" % (offset, path)
        f.seek(offset)
        f.write(bytes([b[0] ^ mask]))


def record_offset(node, name, index):
    """(segment path, offset of the LTX bytes) of log entry INDEX."""
    off, seg = node.extract_ltx(name, index, os.path.join(node.workdir, "tmp.ltx"))
    return seg, off


def served_reads_fail(node, name):
    """True if database NAME is not readable through the mount: opening the
    file fails, or SQLite fails on it with an error other than a missing
    table (which would mean an empty database is served in its place)."""
    try:
        with open(node.path(name), "rb") as f:
            f.read(4096)
    except OSError:
        return True
    try:
        con = sqlite3.connect(node.path(name), isolation_level=None, timeout=2)
        try:
            con.execute("SELECT count(*) FROM t").fetchone()
        finally:
            con.close()
    except sqlite3.Error as e:
        return "no such table" not in str(e)
    return False


def assert_not_served_healthy(node, name, expect_in_log=()):
    """Restart the stopped NODE; database NAME must be reported and not served."""
    rc, text = node.start_expect_exit()
    lines = [ln for ln in text.splitlines() if name in ln]
    assert lines, ("the daemon's log does not name %s after damage (exit status "
                   "%s):\n%s" % (name, rc, text[-3000:]))
    for want in expect_in_log:
        assert any(re.search(want, ln) for ln in lines), (
            "no log line about %s matches %r:\n%s" % (name, want, "\n".join(lines)))
    if rc is None:
        assert served_reads_fail(node, name), (
            "%s is damaged but is served (reads work); log:\n%s" % (name, text[-3000:]))
        # Other databases are still served; /health says which is not.
        assert H.integrity_check(node.path("good.db")) == "ok"
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/health" % node.port, timeout=10)
            raise AssertionError("/health is 200 with %s not served" % name)
        except urllib.error.HTTPError as e:
            assert e.code == 503
            assert "database %s is not served" % name in json.loads(e.read())["error"]
        node.check_replay("good.db")
        return "served-others"
    assert rc != 0, "daemon exited 0 after refusing to serve %s" % name
    return "refused-start"


# ---- damaged log ---------------------------------------------------------------

NEWEST_DAMAGE = ["flip-page-data", "flip-header-timestamp", "flip-file-checksum",
                 "flip-post-checksum", "truncate-segment", "append-garbage"]


@pytest.mark.parametrize("mode", ["delete", "wal"])
@pytest.mark.parametrize("damage", NEWEST_DAMAGE)
def test_damaged_newest_transaction_detected_at_start(node, mode, damage):
    make_db(node, "bad.db", mode)
    make_db(node, "good.db", mode, n=5)
    ents = node.log_list("bad.db")
    last = ents[-1]
    node.stop()
    seg, off = record_offset(node, "bad.db", len(ents) - 1)
    if damage == "flip-page-data":
        flip(seg, off + 96 + 16 + 1000)
    elif damage == "flip-header-timestamp":
        flip(seg, off + 44)
    elif damage == "flip-file-checksum":
        flip(seg, off + last.nbytes - 3)
    elif damage == "flip-post-checksum":
        flip(seg, off + last.nbytes - 12)
    elif damage == "truncate-segment":
        os.truncate(seg, off + last.nbytes - 100)
    elif damage == "append-garbage":
        # Garbage after the last record (in the log's zeroed space) is what a
        # torn append looks like; the daemon may cut it.  The database must
        # then still be served, intact.
        with open(seg, "r+b") as f:
            f.seek(off + last.nbytes)
            f.write(b"LTXR" + os.urandom(200))
        node.start()
        assert node.pos("bad.db") == (last.txid, last.post)
        assert H.integrity_check(node.path("bad.db")) == "ok"
        node.check_replay("bad.db")
        return
    how = assert_not_served_healthy(node, "bad.db")
    print("damage %s: %s" % (damage, how))
    if damage != "truncate-segment":
        # (A truncated tail is indistinguishable from a torn append to the
        # log alone; only the database's checksum reveals it.)
        cp = node.ltxfs("log", "verify", "-data", node.data, "-name", "bad.db", check=False)
        assert cp.returncode not in (0,) and cp.stderr.strip(), H.describe_run(cp)


@pytest.mark.parametrize("damage", ["flip-page-data", "flip-header-timestamp",
                                    "flip-file-checksum"])
def test_damaged_older_transaction_found_by_log_verify(node, damage):
    make_db(node, "old.db", "wal")
    ents = node.log_list("old.db")
    node.stop()
    idx = 2
    seg, off = record_offset(node, "old.db", idx)
    target = {"flip-page-data": off + 96 + 16 + 50,
              "flip-header-timestamp": off + 44,
              "flip-file-checksum": off + ents[idx].nbytes - 2}[damage]
    flip(seg, target)
    cp = node.ltxfs("log", "verify", "-data", node.data, "-name", "old.db", check=False)
    assert cp.returncode != 0 and cp.stderr.strip(), H.describe_run(cp)
    assert str(ents[idx].txid) in cp.stderr or "%016x" % ents[idx].txid in cp.stderr, (
        "the error does not name TXID %d:\n%s" % (ents[idx].txid, H.describe_run(cp)))
    out = os.path.join(node.workdir, "r.db")
    cp = node.ltxfs("log", "replay", "-data", node.data, "-name", "old.db", "-o", out,
                    check=False)
    assert cp.returncode != 0 and cp.stderr.strip(), H.describe_run(cp)
    # The daemon verifies only the newest record at start (fast start); note
    # what it does with damage further back.
    rc, text = node.start_expect_exit()
    print("daemon start with damaged TXID %d (%s): %s" % (
        ents[idx].txid, damage, "exit %s" % rc if rc is not None else "mounted"))


# ---- database file modified behind the daemon's back ------------------------

@pytest.mark.parametrize("how", ["clean-stop", "sigkill"])
@pytest.mark.parametrize("mode", ["delete", "wal"])
def test_modified_database_file_detected(node, mode, how):
    make_db(node, "m.db", mode, n=40)
    make_db(node, "good.db", mode, n=5)
    if mode == "wal":
        node.checkpoint_if_wal("m.db")
    last = node.log_list("m.db")[-1]
    if how == "clean-stop":
        node.stop()
    else:
        node.crash()
    size = os.path.getsize(node.backing("m.db"))
    assert size >= 4 * 4096
    flip(node.backing("m.db"), 2 * 4096 + 2000, 0x40)
    assert_not_served_healthy(node, "m.db", expect_in_log=[
        r"(?i)txid\D{0,10}(%d|%016x)\b" % (last.txid, last.txid)])


def test_failed_database_can_be_deleted_and_reused(node):
    """Deleting a database that is not served is the way out: the log ends
    it with a delete transaction and the name is a new database again."""
    make_db(node, "m.db", "delete", n=40)
    make_db(node, "good.db", "delete", n=5)
    last = node.log_list("m.db")[-1]
    node.stop()
    flip(node.backing("m.db"), 2 * 4096 + 2000, 0x40)
    assert assert_not_served_healthy(node, "m.db") == "served-others"
    os.remove(node.path("m.db"))
    assert not os.path.exists(node.path("m.db"))
    # deleted: the delete transaction is logged, then the database gives
    # its directory and log back (test_scale.py)
    assert "m.db" not in os.listdir(os.path.join(node.data, "dbs"))
    H.sqlite_cli(node.path("m.db"), "CREATE TABLE t(x); INSERT INTO t VALUES (7);")
    assert H.integrity_check(node.path("m.db")) == "ok"
    # created again, its TXIDs continue after the delete (last + 1)
    ents = node.log_list("m.db")
    assert ents[0].txid == last.txid + 2, ents[:3]
    node.log_verify("m.db")
    node.restart()
    assert H.integrity_check(node.path("m.db")) == "ok"
    node.log_verify("m.db")


def test_database_file_removed_while_stopped(node):
    """The log holds a database whose file vanished: not served as empty."""
    make_db(node, "gone.db", "delete")
    make_db(node, "good.db", "delete", n=5)
    node.stop()
    os.remove(node.backing("gone.db"))
    rc, text = node.start_expect_exit()
    assert "gone.db" in text, text[-3000:]
    if rc is None:
        # Neither served as an empty database nor silently re-created.
        with pytest.raises(OSError):
            with open(node.path("gone.db"), "rb") as f:
                f.read(100)
        with pytest.raises(OSError):
            with open(node.path("gone.db"), "ab") as f:
                f.write(b"x")
        assert not os.path.exists(node.backing("gone.db"))
        node.log_verify("gone.db")
    else:
        assert rc != 0


# ---- single LTX files ------------------------------------------------------------

def _ltx_sample(node):
    """An LTX file of one transaction with at least 3 pages of 1024 bytes."""
    con = H.connect(node.path("x.db"), "delete", page_size=1024)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    con.execute("INSERT INTO t(v) VALUES (randomblob(5000))")
    con.close()
    ents = node.log_list("x.db")
    idx = max(range(len(ents)), key=lambda i: ents[i].page_count)
    assert ents[idx].page_count >= 3, ents
    path = os.path.join(node.workdir, "sample.ltx")
    node.extract_ltx("x.db", idx, path)
    with open(path, "rb") as f:
        return path, f.read(), ents[idx]


def _run_ltx(node, cmd, data, name):
    path = os.path.join(node.workdir, name)
    with open(path, "wb") as f:
        f.write(data)
    cp = node.ltxfs("ltx", cmd, path, check=False)
    assert 0 <= cp.returncode < 128, "ltx %s crashed on %s\n%s" % (cmd, name, H.describe_run(cp))
    return cp


def test_ltx_verify_and_dump_good_file(node):
    path, data, ent = _ltx_sample(node)
    cp = node.ltxfs("ltx", "verify", path)
    assert cp.returncode == 0
    cp = node.ltxfs("ltx", "dump", path)
    out = cp.stdout
    assert "page_size" in out and "1024" in out, out
    assert str(ent.page_count) in out
    assert ("%016x" % ent.post) in out.lower(), "dump does not show the post-apply checksum"


def test_ltx_verify_rejects_damaged_files(node):
    path, data, ent = _ltx_sample(node)
    n = len(data)
    ps = 1024
    cases = {}
    for cut in sorted({0, 1, 4, 50, 95, 96, 100, 96 + 16, 96 + 16 + ps // 2, n // 2,
                       n - 16, n - 9, n - 1}):
        cases["truncated-%d" % cut] = data[:cut]
    cases["extended-1"] = data + b"\0"
    cases["extended-garbage"] = data + os.urandom(1000)
    cases["duplicated"] = data + data
    flips = {"magic": 0, "version": 5, "reserved": 7, "flags": 11, "page-size": 13,
             "commit": 19, "page-count": 23, "min-txid": 31, "max-txid": 39,
             "timestamp": 44, "pre-checksum": 50, "reserved-tail": 80,
             "frame1-pgno": 96 + 3, "frame1-flags": 96 + 7, "frame1-checksum": 96 + 10,
             "frame1-data": 96 + 16 + 10, "frame2-data": 96 + (16 + ps) + 16 + ps - 1,
             "last-frame-data": n - 16 - 1, "post-checksum": n - 16 + 3,
             "file-checksum": n - 1}
    for what, off in flips.items():
        b = bytearray(data)
        b[off] ^= 0x10
        cases["flip-" + what] = bytes(b)
    # Frames out of order: swap the first two frames (each frame keeps its own
    # valid page checksum; only the order and the file checksum are wrong).
    fs = 16 + ps
    f1, f2 = data[96:96 + fs], data[96 + fs:96 + 2 * fs]
    cases["frames-swapped"] = data[:96] + f2 + f1 + data[96 + 2 * fs:]
    # A frame duplicated in place of the next one.
    cases["frame-duplicated"] = data[:96] + f1 + f1 + data[96 + 2 * fs:]

    accepted = []
    for name, blob in cases.items():
        cp = _run_ltx(node, "verify", blob, name + ".ltx")
        if cp.returncode == 0:
            accepted.append(name)
            continue
        assert cp.stderr.strip(), "ltx verify %s: non-zero exit but no message" % name
        cp = _run_ltx(node, "dump", blob, name + ".ltx")
        assert cp.returncode != 0, "ltx dump accepted %s" % name
        assert cp.stderr.strip(), "ltx dump %s: non-zero exit but no message" % name
    assert not accepted, "ltx verify accepted damaged files: %s" % accepted

    cp = node.ltxfs("ltx", "verify", os.path.join(node.workdir, "no-such.ltx"), check=False)
    assert cp.returncode != 0 and "no-such.ltx" in cp.stderr, H.describe_run(cp)


# ---- bad configs -----------------------------------------------------------------

def _config_case(node, case):
    base = node.config_text()
    if case == "unknown-top-level-key":
        return base + "bogus-top-key: 1\n", [r"bogus-top-key"]
    if case == "unknown-nested-key":
        return base.replace("lease:\n", "lease:\n  bogus-lease-key: x\n"), [r"lease\.bogus-lease-key"]
    if case == "unknown-fuse-key":
        return base.replace("fuse:\n", "fuse:\n  mountpoint: /x\n"), [r"fuse\.mountpoint"]
    if case == "bad-lease-type":
        return (base.replace("type: static", "type: bogus-lease-type"),
                [r"lease\.type", r"bogus-lease-type"])
    if case == "replica-kernel-locks":
        text = base.replace("candidate: true", "candidate: false\n  advertise-url: "
                            "\"http://primary.invalid:20202\"")
        return (re.sub(r"locks: \w+", "locks: kernel", text),
                [r"fuse\.locks: kernel", r"replica", r"lease\.candidate: false"])
    if case == "bad-lease-candidate":
        return base.replace("candidate: true", "candidate: maybe"), [r"lease\.candidate", r"maybe"]
    if case == "bad-log-level":
        return base.replace("level: %s" % H.LOG_LEVEL, "level: loudest"), [r"log\.level", r"loudest"]
    if case == "missing-fuse-dir":
        return re.sub(r"(fuse:\n)  dir: [^\n]*\n", r"\1", base), [r"fuse\.dir"]
    if case == "missing-data-dir":
        return re.sub(r"data:\n  dir: [^\n]*\n", "", base), [r"data\.dir"]
    if case == "scalar-instead-of-map":
        return base.replace("lease:\n  type: static\n  candidate: true\n",
                            "lease: static\n"), [r"\blease\b"]
    if case == "yaml-syntax-error":
        return base + "fuse: [unclosed\n", [r"(?i)yaml|syntax|parse"]
    raise AssertionError(case)


CONFIG_CASES = ["unknown-top-level-key", "unknown-nested-key", "unknown-fuse-key",
                "bad-lease-type", "bad-lease-candidate", "replica-kernel-locks", "bad-log-level",
                "missing-fuse-dir", "missing-data-dir", "scalar-instead-of-map",
                "yaml-syntax-error"]


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config_rejected(node_factory, case):
    node = node_factory()
    text, patterns = _config_case(node, case)
    node.write_config(text)
    rc, log = node.start_expect_exit()
    assert rc is not None, "ltxfs mounted with a bad config (%s):\n%s" % (case, text)
    assert rc != 0, "ltxfs exited 0 with a bad config (%s)" % case
    for p in patterns:
        assert re.search(p, log), ("the error for %s does not match %r:\n%s"
                                   % (case, p, log[-2000:]))
    assert not H.mounted_at(node.mnt)


def test_missing_config_file(node_factory):
    node = node_factory()
    if os.path.exists(node.config_path):
        os.remove(node.config_path)
    rc, log = node.start_expect_exit()
    assert rc is not None and rc != 0, log
    assert "ltxfs.yml" in log, log[-2000:]
