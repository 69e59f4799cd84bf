"""test_clients.py - the sqlite3 CLI and Python's sqlite3 module as clients.

The same SQL script, run by the CLI on the mount and on a plain directory,
gives the same `.dump`; Python and the CLI see each other's writes; the
backup API (.backup, .restore, Connection.backup), VACUUM INTO, .import and
read-only opens work on the mount.  Every database ends with the replay
invariant.  Modes: DELETE and WAL (rollback modes share one code path in
SQLite's clients; test_commit.py covers all four).
"""

import sqlite3

import pytest

import ltxfs_helpers as H

MODES = ["delete", "wal"]

SCRIPT = """
PRAGMA journal_mode=%(mode)s;
CREATE TABLE person(id INTEGER PRIMARY KEY, name TEXT NOT NULL, born INTEGER);
CREATE TABLE note(id INTEGER PRIMARY KEY, person INTEGER REFERENCES person(id),
                  body TEXT, data BLOB);
CREATE INDEX note_person ON note(person);
BEGIN;
INSERT INTO person(name, born) VALUES ('ada', 1815), ('alan', 1912), ('grace', 1906);
INSERT INTO note(person, body, data) VALUES (1, 'engine', zeroblob(5000));
COMMIT;
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500)
INSERT INTO note(person, body, data)
  SELECT 1 + x %% 3, printf('note %%d', x), zeroblob(x * 7) FROM c;
COMMIT;
UPDATE person SET born = born + 1 WHERE name = 'grace';
DELETE FROM note WHERE id %% 10 = 0;
CREATE VIEW busy AS SELECT person, count(*) AS n FROM note GROUP BY person;
CREATE TRIGGER person_del AFTER DELETE ON person
  BEGIN DELETE FROM note WHERE person = old.id; END;
DELETE FROM person WHERE name = 'alan';
"""
# Transactions in SCRIPT (journal_mode=wal on a new database adds one).
SCRIPT_TXNS = 10


def dump(db):
    return H.sqlite_cli(db, ".dump\n").stdout


@pytest.mark.parametrize("mode", MODES)
def test_cli_script_same_as_native(node, tmp_path, mode):
    native = str(tmp_path / "native.db")
    H.sqlite_cli(native, SCRIPT % {"mode": mode})
    H.sqlite_cli(node.path("s.db"), SCRIPT % {"mode": mode})
    assert dump(node.path("s.db")) == dump(native)
    assert node.last_txid("s.db") == SCRIPT_TXNS + (1 if mode == "wal" else 0)
    con = sqlite3.connect(node.path("s.db"))
    ncon = sqlite3.connect(native)
    assert list(con.iterdump()) == list(ncon.iterdump())
    con.close()
    ncon.close()
    node.check_replay("s.db")


@pytest.mark.parametrize("mode", MODES)
def test_python_and_cli_see_each_other(node, track_conn, mode):
    db = node.path("pc.db")
    con = track_conn(H.connect(db, mode))
    con.execute("CREATE TABLE kv(k TEXT PRIMARY KEY, v)")
    for i in range(10):
        con.execute("INSERT INTO kv VALUES (?, ?)", ("py%d" % i, i))
        H.sqlite_cli(db, "INSERT INTO kv VALUES ('cli%d', %d);" % (i, -i))
        assert con.execute("SELECT count(*) FROM kv").fetchone()[0] == 2 * (i + 1)
        out = H.sqlite_cli(db, "SELECT count(*) FROM kv;").stdout.strip()
        assert out == str(2 * (i + 1))
    # The legacy Python transaction handling (isolation_level "") too.
    legacy = track_conn(sqlite3.connect(db, timeout=30))
    legacy.execute("INSERT INTO kv VALUES ('legacy', 1)")
    legacy.execute("UPDATE kv SET v = v * 10 WHERE k LIKE 'py%'")
    legacy.commit()
    legacy.close()
    con.close()
    assert node.last_txid("pc.db") == (1 if mode == "wal" else 0) + 1 + 20 + 1
    node.check_replay("pc.db")


@pytest.mark.parametrize("mode", MODES)
def test_backup_restore_vacuum_into(node, tmp_path, mode):
    native = str(tmp_path / "src.db")
    H.sqlite_cli(native, SCRIPT % {"mode": mode})
    want = dump(native)
    # .backup: the backup API writing a new database on the mount.
    H.sqlite_cli(native, ".backup '%s'\n" % node.path("bk.db"))
    # VACUUM INTO: SQLite writes the new file without a journal.
    H.sqlite_cli(native, "VACUUM INTO '%s';" % node.path("vi.db"))
    # .restore: the backup API overwriting an existing database on the mount.
    H.sqlite_cli(node.path("rs.db"), "PRAGMA journal_mode=%s; CREATE TABLE junk(x);"
                 "INSERT INTO junk VALUES (randomblob(100000));" % mode)
    H.sqlite_cli(node.path("rs.db"), ".restore '%s'\n" % native)
    for name in ("bk.db", "vi.db", "rs.db"):
        assert dump(node.path(name)) == want, name
        assert H.integrity_check(node.path(name)) == "ok", name
        node.check_replay(name)
    # And back out of the mount with the Python backup API, in small steps.
    src = sqlite3.connect(node.path("bk.db"))
    dst = sqlite3.connect(str(tmp_path / "out.db"))
    src.backup(dst, pages=3)
    src.close()
    dst.close()
    assert dump(str(tmp_path / "out.db")) == want


@pytest.mark.parametrize("mode", MODES)
def test_python_backup_into_mount(node, tmp_path, mode):
    native = str(tmp_path / "src.db")
    H.sqlite_cli(native, SCRIPT % {"mode": mode})
    src = sqlite3.connect(native)
    dst = sqlite3.connect(node.path("pb.db"))
    dst.execute("PRAGMA journal_mode=%s" % mode)
    src.backup(dst, pages=5)
    src.close()
    dst.close()
    assert dump(node.path("pb.db")) == dump(native)
    node.check_replay("pb.db")


def test_cli_import_and_readonly(node, tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("id,name,score\n" + "".join("%d,name%d,%d\n" % (i, i, i * i)
                                               for i in range(2000)))
    db = node.path("imp.db")
    H.sqlite_cli(db, ".mode csv\n.import '%s' scores\n" % csv)
    assert H.sqlite_cli(db, "SELECT count(*), sum(score) FROM scores;").stdout.strip() == \
        "2000|%d" % sum(i * i for i in range(2000))
    before = node.last_txid("imp.db")
    cp = H.sqlite_cli(db, "INSERT INTO scores VALUES (1, 2, 3);", check=False,
                      args=["-readonly"])
    assert cp.returncode != 0 and "readonly" in (cp.stderr + cp.stdout).lower(), H.describe_run(cp)
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == 2000
    with pytest.raises(sqlite3.OperationalError):
        con.execute("DELETE FROM scores")
    con.close()
    assert node.last_txid("imp.db") == before
    out = H.sqlite_cli(db, ".tables\n.schema scores\n").stdout
    assert "scores" in out and "CREATE TABLE" in out, out
    node.check_replay("imp.db")


def test_cli_journal_modes_switch(node):
    """The CLI switching one database through every journal mode."""
    db = node.path("jm.db")
    H.sqlite_cli(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);")
    for mode in ("wal", "delete", "truncate", "persist", "wal", "delete"):
        out = H.sqlite_cli(db, "PRAGMA journal_mode=%s; INSERT INTO t VALUES (2);"
                               "SELECT count(*) FROM t;" % mode).stdout.split()
        assert out[0] == mode, out
    assert H.sqlite_cli(db, "SELECT count(*) FROM t;").stdout.strip() == "7"
    node.check_replay("jm.db")
