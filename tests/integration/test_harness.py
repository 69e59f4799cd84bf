"""test_harness.py - the daemon's life cycle and the simplest client use.

Mount and clean unmount on SIGTERM and SIGINT, the mount root's names
(NAME, NAME-journal/-wal while they exist; NAME-pos by name only), a database created
with the sqlite3 CLI and with Python's sqlite3 module, restart keeps data
and position, a stale mount left by SIGKILL is cleaned by the daemon itself,
${VAR} expansion in the config.
"""

import errno
import os
import signal

import pytest

import ltxfs_helpers as H


def test_mount_and_unmount_sigterm(node):
    assert os.path.ismount(node.mnt)
    assert os.listdir(node.mnt) == []
    assert node.stop(signal.SIGTERM) == 0
    assert not H.mounted_at(node.mnt)


def test_unmount_sigint(node):
    assert node.stop(signal.SIGINT) == 0
    assert not H.mounted_at(node.mnt)


def test_unmount_with_open_connection(node):
    """SIGTERM while a client still has the database open: exit 0, unmounted."""
    con = H.connect(node.path("a.db"), "wal")
    con.execute("CREATE TABLE t(x)")
    con.execute("INSERT INTO t VALUES (1)")
    assert node.stop() == 0
    assert not H.mounted_at(node.mnt)
    try:
        con.close()
    except Exception:
        pass
    node.start()
    assert H.integrity_check(node.path("a.db")) == "ok"
    con = H.connect(node.path("a.db"))
    assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
    con.close()
    node.check_replay("a.db")


def test_create_with_cli(node):
    db = node.path("cli.db")
    H.sqlite_cli(db, "CREATE TABLE t(x INTEGER PRIMARY KEY, y TEXT);"
                     "INSERT INTO t(y) VALUES ('hello'), ('world');")
    names = sorted(os.listdir(node.mnt))
    assert "cli.db" in names and os.path.exists(db + "-pos"), names
    assert not [n for n in names if n.startswith("cli.db-journal")], names
    assert os.path.isfile(node.backing("cli.db"))
    out = H.sqlite_cli(db, "SELECT y FROM t ORDER BY x;").stdout
    assert out.split() == ["hello", "world"]
    txid, ck = node.pos("cli.db")
    assert txid == 2 and ck != 0, (txid, ck)   # CREATE TABLE, INSERT
    node.check_replay("cli.db")


def test_create_with_python(node):
    db = node.path("py.db")
    con = H.connect(db)
    con.execute("CREATE TABLE t(x)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    con.close()
    con = H.connect(db)
    assert con.execute("SELECT count(*), sum(x) FROM t").fetchone() == (100, 4950)
    con.close()
    ents = node.check_replay("py.db")
    assert [e.txid for e in ents] == list(range(1, 102))


def test_names_in_root(node):
    """Listed: NAME always; NAME-wal and NAME-shm only while SQLite has them."""
    db = node.path("n.db")
    con = H.connect(db, "wal")
    con.execute("CREATE TABLE t(x)")
    names = set(os.listdir(node.mnt))
    assert {"n.db", "n.db-wal", "n.db-shm"} <= names, names
    con.close()
    names = set(os.listdir(node.mnt))
    # NAME-pos is reachable by name but never listed (copying "NAME*"
    # must not meet a file that cannot be recreated).
    assert names == {"n.db"}, names
    st = os.stat(node.path("n.db-pos"))
    assert st.st_size == 34


def test_empty_database_position(node):
    """A new empty file is a database at position 0/0 and gets no TXID."""
    open(node.path("empty.db"), "wb").close()
    assert os.path.exists(node.path("empty.db-pos"))
    assert node.pos("empty.db") == (0, 0)
    assert node.last_txid("empty.db") == 0


def test_pos_is_read_only(node):
    db = node.path("ro.db")
    H.sqlite_cli(db, "CREATE TABLE t(x);")
    before = node.pos("ro.db")
    with pytest.raises(OSError) as ei:
        with open(node.path("ro.db-pos"), "r+b") as f:
            f.write(b"0" * 34)
    assert ei.value.errno in (errno.EACCES, errno.EPERM, errno.EROFS), ei.value
    with pytest.raises(OSError):
        os.remove(node.path("ro.db-pos"))
    assert node.pos("ro.db") == before


def test_restart_keeps_data_and_position(node):
    db = node.path("r.db")
    H.sqlite_cli(db, "PRAGMA journal_mode=wal; CREATE TABLE t(x);"
                     "INSERT INTO t VALUES (1),(2),(3);")
    pos = node.pos("r.db")
    node.restart()
    assert node.pos("r.db") == pos
    assert H.sqlite_cli(db, "SELECT sum(x) FROM t;").stdout.strip() == "6"
    H.sqlite_cli(db, "INSERT INTO t VALUES (4);")
    assert node.pos("r.db")[0] == pos[0] + 1
    node.check_replay("r.db")


def test_daemon_cleans_stale_mount(node):
    """After SIGKILL the mount is stale (ENOTCONN); a new daemon on the same
    mount point detaches it by itself (rather than mounting on top of it)
    and serves again.  The mount root's attributes were cached before the
    kill, as they are after any use, so stat() of the stale mount point may
    still succeed."""
    H.sqlite_cli(node.path("s.db"), "CREATE TABLE t(x); INSERT INTO t VALUES (7);")
    node.kill()
    assert H.mounted_at(node.mnt), "expected a stale mount after SIGKILL"
    with pytest.raises(OSError) as ei:
        os.listdir(node.mnt)
    assert ei.value.errno == errno.ENOTCONN, ei.value
    node.start(clean_stale=False)
    assert H.mount_count(node.mnt) == 1, (
        "the stale mount was not detached: %d mounts stacked on %s"
        % (H.mount_count(node.mnt), node.mnt))
    assert H.sqlite_cli(node.path("s.db"), "SELECT x FROM t;").stdout.strip() == "7"
    node.check_replay("s.db")


def test_config_env_expansion(node_factory, monkeypatch):
    """${VAR} in the config is expanded from the environment."""
    n = node_factory()
    monkeypatch.setenv("LTXFS_ITEST_DATA", n.data)
    monkeypatch.setenv("LTXFS_ITEST_MNT", n.mnt)
    n.write_config(n.config_text()
                   .replace(n.data, "${LTXFS_ITEST_DATA}")
                   .replace(n.mnt, "${LTXFS_ITEST_MNT}"))
    with open(n.config_path) as f:
        assert "${LTXFS_ITEST_DATA}" in f.read()
    n.start(write_config=False)
    H.sqlite_cli(n.path("e.db"), "CREATE TABLE t(x);")
    assert os.path.isfile(n.backing("e.db"))
