"""test_names.py - which names enter a node, and how (issue 12, finding 5).

Every entry checks a name with the same rules (db/names.h): the mount's
lookup and create, POST /import and GET /export (?name= at its decoded
length: "x%00y" is not "x"), and the command line.  A name too long for
SQLite's derived files (NAME-journal, NAME-mjXXXXXXXXX) is ENAMETOOLONG.
New files get the caller's mode under the caller's umask, as natively.
"""

import errno
import json
import os
import sqlite3
import subprocess
import urllib.error
import urllib.request

import pytest

import ltxfs_helpers as H


def url(node):
    return "http://127.0.0.1:%d" % node.port


def status_names(node):
    with urllib.request.urlopen(url(node) + "/status", timeout=10) as r:
        return [d["name"] for d in json.loads(r.read())["databases"]]


def http_error(req):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    return e.value.code, json.loads(e.value.read())["error"]


def small_db(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t(x)")
    con.execute("INSERT INTO t VALUES(1)")
    con.commit()
    con.close()
    with open(path, "rb") as f:
        return f.read()


BAD_QUERY_NAMES = [
    ("x%00y", "NUL"),
    ("a%0Ab", "control character"),
    ("a%0Db", "control character"),
    ("a%1Bb", "control character"),
    ("a%7Fb", "control character"),
    ("a%2Fb", "'/'"),
    ("a%FFb", "UTF-8"),
    ("x" * 244, "too long"),
]


@pytest.mark.parametrize("query,why", BAD_QUERY_NAMES)
def test_http_refuses_names_that_are_not_database_names(node, tmp_path, query, why):
    body = small_db(str(tmp_path / "src.db"))
    req = urllib.request.Request(url(node) + "/import?name=" + query, data=body,
                                 method="POST")
    code, msg = http_error(req)
    assert code == 400 and why in msg, (code, msg)
    code, msg = http_error(urllib.request.Request(url(node) + "/export?name=" + query))
    assert code == 400 and why in msg, (code, msg)
    # nothing was created, under any name
    assert status_names(node) == []
    assert os.listdir(node.mnt) == []
    assert os.listdir(os.path.join(node.data, "dbs")) == []
    # the name never reached the log raw
    assert "x\ny" not in node.log_text() and "a\nb" not in node.log_text()


def test_http_import_of_a_valid_name_still_works(node, tmp_path):
    body = small_db(str(tmp_path / "src.db"))
    req = urllib.request.Request(url(node) + "/import?name=caf%C3%A9.db", data=body,
                                 method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert json.loads(r.read())["name"] == "caf\u00e9.db"
    assert status_names(node) == ["caf\u00e9.db"]


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "tab\there", "bell\x07", "del\x7f"])
def test_mount_refuses_control_characters(node, name):
    with pytest.raises(OSError) as e:
        os.close(os.open(node.path(name), os.O_CREAT | os.O_WRONLY, 0o644))
    assert e.value.errno == errno.EINVAL, e.value
    assert os.listdir(node.mnt) == []
    assert status_names(node) == []
    assert name not in node.log_text()


def test_mount_refuses_invalid_utf8(node):
    with pytest.raises(OSError) as e:
        os.close(os.open(os.path.join(node.mnt.encode(), b"bad\xff.db"),
                         os.O_CREAT | os.O_WRONLY, 0o644))
    assert e.value.errno == errno.EINVAL, e.value
    assert os.listdir(node.mnt) == []


def test_long_names_are_enametoolong(node):
    # 243 bytes: the longest database name, so NAME-mjXXXXXX9XX fits NAME_MAX
    longest = "d" * 243
    con = sqlite3.connect(node.path(longest), isolation_level=None)
    con.execute("PRAGMA journal_mode=delete")
    con.execute("CREATE TABLE t(x)")
    con.execute("INSERT INTO t VALUES(1)")
    con.close()
    assert longest in status_names(node)
    for n in (244, 250, 255):
        with pytest.raises(OSError) as e:
            os.close(os.open(node.path("e" * n), os.O_CREAT | os.O_WRONLY, 0o644))
        assert e.value.errno == errno.ENAMETOOLONG, (n, e.value)
    # a -journal of a name that is itself too long
    with pytest.raises(OSError) as e:
        os.close(os.open(node.path("f" * 246 + "-journal"), os.O_CREAT | os.O_WRONLY, 0o644))
    assert e.value.errno == errno.ENAMETOOLONG, e.value
    with pytest.raises(OSError) as e:
        os.stat(node.path("g" * 250))
    assert e.value.errno == errno.ENAMETOOLONG, e.value


def test_cli_refuses_invalid_names(node, tmp_path):
    src = str(tmp_path / "src.db")
    small_db(src)
    for bad in ("a\nb", "x" * 300, "../x", "x.db-wal"):
        cp = subprocess.run([H.binary(), "import", "-url", url(node), "-name", bad, src],
                            capture_output=True, text=True, timeout=60)
        assert cp.returncode != 0 and ("invalid" in cp.stderr or "too long" in cp.stderr), \
            H.describe_run(cp)
        cp = subprocess.run([H.binary(), "log", "list", "-data", node.data, "-name", bad],
                            capture_output=True, text=True, timeout=60)
        assert cp.returncode != 0, H.describe_run(cp)
    assert status_names(node) == []


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_new_files_get_the_callers_umask(node, tmp_path, mask):
    native = tmp_path / "native"
    native.mkdir()
    old = os.umask(mask)
    try:
        got = {}
        for where, d in (("native", str(native)), ("mount", node.mnt)):
            for name, mode in (("m%o.db" % mask, 0o666), ("m%o.db-journal" % mask, 0o640),
                               ("m%o.db-mj0A1B2C93D" % mask, 0o666)):
                p = os.path.join(d, name)
                os.close(os.open(p, os.O_CREAT | os.O_WRONLY, mode))
                got.setdefault(name, {})[where] = os.stat(p).st_mode & 0o7777
    finally:
        os.umask(old)
    for name, modes in got.items():
        assert modes["mount"] == modes["native"], (name, {k: oct(v) for k, v in modes.items()})


def test_overwritten_page_one_is_reported_untracked(node, tmp_path):
    """Random bytes over page 1 through the mount: the file is no longer a
    SQLite database, so nothing of it is logged or replicated.  That state is
    explicit (status, metric, /health, export, one log line), and deleting
    the file ends it."""
    con = sqlite3.connect(node.path("u.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode=delete")
    con.execute("CREATE TABLE t(x)")
    con.execute("INSERT INTO t VALUES(1)")
    con.close()
    txid = node.pos("u.db")[0]
    with urllib.request.urlopen(url(node) + "/health", timeout=10) as r:
        assert r.status == 200
    fd = os.open(node.path("u.db"), os.O_WRONLY)
    os.pwrite(fd, os.urandom(4096), 0)
    os.fsync(fd)
    os.close(fd)
    with urllib.request.urlopen(url(node) + "/status", timeout=10) as r:
        db = [d for d in json.loads(r.read())["databases"] if d["name"] == "u.db"][0]
    assert db["untracked"] is True and db["txid"] == txid, db
    assert "not a SQLite database" in db["untracked_reason"], db
    with urllib.request.urlopen(url(node) + "/metrics", timeout=10) as r:
        assert 'ltxfs_db_untracked{db="u.db"} 1' in r.read().decode()
    code, msg = http_error(urllib.request.Request(url(node) + "/health"))
    assert code == 503 and "u.db is untracked" in msg, (code, msg)
    code, msg = http_error(urllib.request.Request(url(node) + "/export?name=u.db"))
    assert code == 409 and "untracked" in msg, (code, msg)
    assert "content is not a SQLite database" in node.log_text()
    # the way out: delete it (or write a valid database over it)
    os.remove(node.path("u.db"))
    with urllib.request.urlopen(url(node) + "/health", timeout=10) as r:
        assert r.status == 200
