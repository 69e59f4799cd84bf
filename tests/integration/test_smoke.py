"""Smoke test of a single-node mount: every journal mode commits into the log,
the log verifies, and replaying it reproduces the database byte for byte.
Self-contained (its own fixture) so it runs before the full suite lands."""
import os
import signal
import sqlite3
import subprocess
import time

import pytest

LTXFS = os.environ.get("LTXFS_BIN", os.path.abspath("build/ltxfs"))


@pytest.fixture
def node(tmp_path):
    mnt, data = tmp_path / "mnt", tmp_path / "data"
    mnt.mkdir()
    cfg = tmp_path / "ltxfs.yml"
    cfg.write_text(f"fuse:\n  dir: {mnt}\ndata:\n  dir: {data}\n"
                   "lease:\n  type: static\n  candidate: true\n")
    log = open(tmp_path / "ltxfs.log", "w")
    proc = subprocess.Popen([LTXFS, "mount", "-config", str(cfg)],
                            stdout=log, stderr=log)
    try:
        for _ in range(100):
            if os.path.ismount(mnt):
                break
            assert proc.poll() is None, (tmp_path / "ltxfs.log").read_text()
            time.sleep(0.1)
        assert os.path.ismount(mnt)
        yield mnt, data
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)
        log.close()


def ltxfs(*args):
    return subprocess.run([LTXFS, *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("mode", ["delete", "truncate", "persist", "wal"])
def test_commits_are_logged_and_replay_byte_identical(node, tmp_path, mode):
    mnt, data = node
    path = str(mnt / "t.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={mode}")
    conn.execute("CREATE TABLE t(x)")
    before = int(ltxfs("log", "list", "-data", str(data), "-name", "t.db").split("\n")[-2].split()[0])
    for i in range(20):
        conn.execute("INSERT INTO t VALUES (?)", (os.urandom(300),))
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("ROLLBACK")
    conn.execute("SELECT count(*) FROM t").fetchone()
    conn.close()
    lines = ltxfs("log", "list", "-data", str(data), "-name", "t.db").strip().split("\n")
    assert int(lines[-1].split()[0]) == before + 20, lines[-3:]
    assert ltxfs("log", "verify", "-data", str(data), "-name", "t.db").startswith("ok ")
    pos = (mnt / "t.db-pos").read_text()
    txid, ck = pos.strip().split("/")
    last = lines[-1].split()
    assert int(txid, 16) == int(last[0]) and ck == last[2]
    out = tmp_path / "replay.db"
    ltxfs("log", "replay", "-data", str(data), "-name", "t.db", "-o", str(out))
    assert out.read_bytes() == (mnt / "t.db").read_bytes()
