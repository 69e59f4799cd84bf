"""test_s3_client.py - net/s3.h against a real S3 server.

The client is driven through tests/integration/s3_driver.c, the server is
s3rver with the checks of S3 it lacks added (s3_server.py: SigV4
signatures, Content-MD5, the payload's SHA-256).  The tests check: objects
come back as they went, whole and in ranges, under keys that need encoding
(spaces, '+', '=', UTF-8: a non-canonical encoding would break the
signature); listings over many pages (continuation tokens) and after a
key; deletes in batches of 1000; multipart uploads, aborted when they fail;
a wrong secret refused at once with S3's words; a missing key -ENOENT; 503s
and resets retried, and an error after max_attempts when they persist;
timeouts; corrupted bodies, both ways, refused and retried; the cancel
flag; and an https endpoint trusted through tls_ca.
"""

import hashlib
import os
import subprocess
import time

import pytest

from fault_proxy import FaultProxy
from s3_server import S3FaultProxy, S3Server
import ltxfs_helpers as H
import tls_pki

pytestmark = H.LTXFS_LOCKS_PASS_ONLY

MiB = 1 << 20

# Keys whose encoding matters: each byte class S3 and SigV4 treat apart.
ODD_KEYS = [
    "odd/a b+c=d&e",
    "odd/caf\u00e9/\u20ac\u00fc\u00df.ltx",
    "odd/!'()*;:@$,~%[]",
    "odd/tab\tand?hash#",
]


def driver_path():
    return os.path.join(os.environ.get("LTXFS_TEST_BINS", "build/tests"), "s3_driver")


class Result:
    def __init__(self, p):
        out = p.stdout.decode("utf-8", "replace").splitlines()
        self.last = out[-1] if out else ""
        self.lines = out[:-1]
        self.ok = self.last.startswith("ok")
        self.stderr = p.stderr.decode("utf-8", "replace")
        self.stats = {}
        for line in self.stderr.splitlines():
            if line.startswith("stats "):
                self.stats = {k: int(v) for k, v in
                              (w.split("=") for w in line.split()[1:])}

    def __repr__(self):
        return "Result(%r, stats=%r, stderr=%r)" % (self.last, self.stats, self.stderr[-500:])


def drive(s3, *args, endpoint=None, stdin=None, timeout=60, **env):
    """One s3_driver run against s3 (or `endpoint`); env: S3_* overrides."""
    e = dict(os.environ, S3_ENDPOINT=endpoint or s3.url, S3_BUCKET=s3.bucket,
             S3_ACCESS_KEY=s3.access_key, S3_SECRET_KEY=s3.secret_key, S3_BACKOFF_MS="20")
    e.update({k: str(v) for k, v in env.items()})
    argv = [driver_path()] + [a.encode() if isinstance(a, str) else a for a in args]
    p = subprocess.run(argv, env=e, input=stdin, capture_output=True, timeout=timeout)
    r = Result(p)
    # a sanitizer build (LTXFS_TEST_BINS=build-asan/tests) reports here
    for mark in ("Sanitizer", "runtime error:"):
        assert mark not in r.stderr, r.stderr
    assert p.returncode == (0 if r.ok else 1), r
    return r


def ok(r):
    assert r.ok, r
    return r


def put_bytes(s3, tmp_path, key, data, cmd="put", **env):
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    return drive(s3, cmd, key, str(f), **env)


def get_bytes(s3, tmp_path, key, *rng, **env):
    f = tmp_path / "down.bin"
    r = drive(s3, "get", key, str(f), *[str(x) for x in rng], **env)
    return (f.read_bytes() if r.ok else None), r


def listing(r):
    return [line.rsplit(" ", 2)[0] for line in r.lines]


def test_objects_come_back_whole_and_in_ranges(s3_server, tmp_path):
    data = os.urandom(100_000)
    ok(put_bytes(s3_server, tmp_path, "obj/one.ltx", data))
    got, r = get_bytes(s3_server, tmp_path, "obj/one.ltx")
    assert ok(r) and got == data
    assert r.stats["bytes_down"] == len(data)
    # (not (0, 1): s3rver 3 takes "bytes=0-0" for the whole object)
    for off, ln in [(0, 2), (1, 1), (1000, 5000), (99_990, 10), (5000, 0), (99_990, 100)]:
        got, r = get_bytes(s3_server, tmp_path, "obj/one.ltx", off, ln)
        ok(r)
        assert got == (data[off:off + ln] if ln else data[off:]), (off, ln)
    # a file's bytes, from a descriptor (one PUT below the part size), and nothing
    ok(put_bytes(s3_server, tmp_path, "obj/two.ltx", data[:777], cmd="put-file"))
    assert get_bytes(s3_server, tmp_path, "obj/two.ltx")[0] == data[:777]
    ok(put_bytes(s3_server, tmp_path, "obj/empty", b"", cmd="put-file"))
    assert get_bytes(s3_server, tmp_path, "obj/empty")[0] == b""
    # overwritten
    ok(put_bytes(s3_server, tmp_path, "obj/one.ltx", b"again"))
    assert get_bytes(s3_server, tmp_path, "obj/one.ltx")[0] == b"again"


def test_keys_that_need_encoding_are_signed_and_listed_as_they_are(s3_server, tmp_path):
    """The verifier re-encodes path and query canonically: a key (or a
    prefix, or a continuation token) the client encoded otherwise would be
    refused as SignatureDoesNotMatch."""
    for i, key in enumerate(ODD_KEYS):
        ok(put_bytes(s3_server, tmp_path, key, b"v%d" % i))
    for i, key in enumerate(ODD_KEYS):
        got, r = get_bytes(s3_server, tmp_path, key)
        assert ok(r) and got == b"v%d" % i, key
    r = ok(drive(s3_server, "list", "odd/"))
    assert listing(r) == sorted(ODD_KEYS, key=lambda k: k.encode())
    # a prefix and a start-after that need encoding, one key a page
    r = ok(drive(s3_server, "list", "odd/a b+", S3_PAGE_SIZE=1))
    assert listing(r) == ["odd/a b+c=d&e"]
    r = ok(drive(s3_server, "list", "odd/", "odd/caf\u00e9", S3_PAGE_SIZE=1))
    assert listing(r) == [k for k in sorted(ODD_KEYS, key=lambda k: k.encode())
                          if k.encode() > "odd/caf\u00e9".encode()]
    ok(drive(s3_server, "delete", *ODD_KEYS))
    assert listing(ok(drive(s3_server, "list", "odd/"))) == []


def test_a_missing_key_is_enoent(s3_server, tmp_path):
    got, r = get_bytes(s3_server, tmp_path, "miss/none")
    assert r.last.startswith("err ENOENT"), r
    assert "HTTP 404: NoSuchKey" in r.last and "/miss/none" in r.last, r
    assert r.stats["requests"] == 1 and r.stats["errors"] == 1, r


def test_a_wrong_secret_or_key_is_refused_at_once(s3_server, tmp_path):
    r = put_bytes(s3_server, tmp_path, "auth/x", b"x", S3_SECRET_KEY="not-the-secret")
    assert r.last.startswith("err EACCES"), r
    assert r.last.startswith("err EACCES PUT http://127.0.0.1:%d/%s/auth/x: HTTP 403: "
                             "SignatureDoesNotMatch: The request signature we calculated"
                             % (s3_server.port, s3_server.bucket)), r
    assert r.stats["requests"] == 1, r            # not retried
    r = drive(s3_server, "list", S3_ACCESS_KEY="NOBODY")
    assert r.last.startswith("err EACCES") and "InvalidAccessKeyId" in r.last, r
    # the region is part of the signature too
    r = drive(s3_server, "list", S3_REGION="eu-west-1")
    assert r.last.startswith("err EPROTO") and "AuthorizationHeaderMalformed" in r.last, r
    got, r = get_bytes(s3_server, tmp_path, "auth/x")
    assert r.last.startswith("err ENOENT"), r     # nothing was stored


def test_listing_and_deleting_thousands_of_keys_page_by_page(s3_server, tmp_path):
    n = 1100
    ok(drive(s3_server, "put-many", "pg/", str(n), "4"))
    ok(drive(s3_server, "put", "pg-other", "/dev/null"))
    keys = ["pg/%06d" % i for i in range(n)]
    r = ok(drive(s3_server, "list", "pg/", S3_PAGE_SIZE=1000))
    assert listing(r) == keys
    assert r.stats["requests"] == 2, r            # 1000 + 100
    sizes = {line.split()[0]: int(line.split()[1]) for line in r.lines}
    assert sizes["pg/000007"] == len("value 7")
    r = ok(drive(s3_server, "list", "pg/", "pg/000100", S3_PAGE_SIZE=400))
    assert listing(r) == keys[101:] and r.stats["requests"] == 3, r     # 400, 400, 199
    assert listing(ok(drive(s3_server, "list", "pg/9"))) == []
    # delete all, and two that never were: 2 batches
    stdin = "\n".join(keys + ["pg/missing-1", "pg/missing-2"]).encode() + b"\n"
    mark = len(s3_server.requests())
    r = ok(drive(s3_server, "delete", "-", stdin=stdin))
    # (s3rver 3 sometimes fails a batch, 500, racing to remove the emptied
    # directories of its store: the batch is sent again)
    assert r.stats["requests"] - r.stats["retries"] == 2, r
    posts = [q for q in s3_server.requests()[mark:] if q["status"] == 200]
    assert len(posts) == 2 and all("?delete=" in q["url"] for q in posts), posts
    assert listing(ok(drive(s3_server, "list", "pg"))) == ["pg-other"]


def test_a_large_file_is_a_multipart_upload(s3_server, tmp_path):
    data = os.urandom(12 * MiB + 123)
    r = ok(put_bytes(s3_server, tmp_path, "mp/big.ltx", data, cmd="put-file",
                     S3_PART_SIZE=5 * MiB))
    assert r.stats["requests"] == 5, r            # create, 3 parts, complete
    assert r.stats["bytes_up"] >= len(data), r
    seen = [(q["method"], q["url"].split("?", 1)[-1].split("&")[0]) for q in s3_server.requests()]
    assert seen[-5:] == [("POST", "uploads="), ("PUT", "partNumber=1"), ("PUT", "partNumber=2"),
                         ("PUT", "partNumber=3"), ("POST", seen[-1][1])], seen
    got, r = get_bytes(s3_server, tmp_path, "mp/big.ltx")
    assert ok(r) and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    got, r = get_bytes(s3_server, tmp_path, "mp/big.ltx", 5 * MiB - 10, 20)
    assert got == data[5 * MiB - 10:5 * MiB + 10]
    r = ok(drive(s3_server, "list", "mp/big"))
    assert r.lines[0].split()[:2] == ["mp/big.ltx", str(len(data))]


def test_a_failed_multipart_upload_is_aborted(s3_server, tmp_path):
    with S3FaultProxy(s3_server.port) as proxy:
        proxy.fail(100, status=500, code="InternalError", message="part refused",
                   methods=("PUT",))
        r = put_bytes(s3_server, tmp_path, "mpfail/big.ltx", os.urandom(11 * MiB), cmd="put-file",
                      endpoint=proxy.url, S3_PART_SIZE=5 * MiB, S3_MAX_ATTEMPTS=3)
    assert r.last.startswith("err EAGAIN"), r
    assert "partNumber=1" in r.last and "HTTP 500: InternalError: part refused (3 attempts)" \
        in r.last, r
    log = s3_server.requests()
    aborts = [q for q in log if q["method"] == "DELETE" and "/mpfail/" in q["url"]]
    assert [q["status"] for q in aborts] == [204], log
    uploads = os.path.join(s3_server.data_dir, s3_server.bucket, "._S3rver_uploads")
    assert not os.path.isdir(uploads) or os.listdir(uploads) == []
    assert get_bytes(s3_server, tmp_path, "mpfail/big.ltx")[1].last.startswith("err ENOENT")


def test_503s_and_resets_are_retried(s3_server, tmp_path):
    with S3FaultProxy(s3_server.port) as proxy:
        proxy.fail(2, status=503, code="SlowDown")
        r = ok(put_bytes(s3_server, tmp_path, "retry/r", b"retried", endpoint=proxy.url))
        assert r.stats["requests"] == 3 and r.stats["retries"] == 2, r
        proxy.reset(2)
        got, r = get_bytes(s3_server, tmp_path, "retry/r", endpoint=proxy.url)
        assert ok(r) and got == b"retried"
        assert r.stats["retries"] == 2, r
        # a throttled delete, and a 500 on a listing
        proxy.fail(1, status=500, code="InternalError")
        r = ok(drive(s3_server, "list", "retry/", endpoint=proxy.url))
        assert listing(r) == ["retry/r"] and r.stats["retries"] == 1
        proxy.fail(1, status=429, code="TooManyRequests")
        r = ok(drive(s3_server, "delete", "retry/r", endpoint=proxy.url))
        assert r.stats["retries"] == 1
        assert proxy.injected == 6


def test_faults_that_persist_fail_after_max_attempts(s3_server, tmp_path):
    with S3FaultProxy(s3_server.port) as proxy:
        proxy.fail(100, status=503, code="SlowDown", message="Please reduce your request rate.")
        t0 = time.monotonic()
        r = put_bytes(s3_server, tmp_path, "persist/p", b"p", endpoint=proxy.url, S3_MAX_ATTEMPTS=4)
        assert r.last == ("err EAGAIN PUT %s/%s/persist/p: HTTP 503: SlowDown: Please reduce your "
                          "request rate. (4 attempts)" % (proxy.url, s3_server.bucket)), r
        assert r.stats["requests"] == 4 and r.stats["retries"] == 3, r
        assert proxy.requests == 4
        assert time.monotonic() - t0 < 5
        proxy.clear()
        proxy.reset(100)
        got, r = get_bytes(s3_server, tmp_path, "persist/p", endpoint=proxy.url, S3_MAX_ATTEMPTS=3)
        assert r.last.startswith("err EAGAIN GET %s/%s/persist/p: " % (proxy.url, s3_server.bucket)), r
        assert "(3 attempts)" in r.last and r.stats["requests"] == 3, r
    # nobody listening at all
    port = H.free_port()
    r = drive(s3_server, "list", endpoint="http://127.0.0.1:%d" % port, S3_MAX_ATTEMPTS=2)
    assert r.last.startswith("err EAGAIN GET http://127.0.0.1:%d/" % port), r
    assert "(2 attempts)" in r.last


def test_connections_cut_or_stalled_by_the_network(s3_server, tmp_path):
    """Through fault_proxy.py: refused connections, then a stall (the
    per-attempt timeout), each retried; the object arrives once it passes."""
    ok(put_bytes(s3_server, tmp_path, "net/n", b"net"))
    with FaultProxy("127.0.0.1", s3_server.port) as proxy:
        url = "http://127.0.0.1:%d" % proxy.port
        proxy.refuse(True)
        r = drive(s3_server, "list", endpoint=url, S3_MAX_ATTEMPTS=3)
        assert r.last.startswith("err EAGAIN") and "(3 attempts)" in r.last, r
        assert proxy.refused == 3
        proxy.refuse(False)
        proxy.set_mode("stall")
        t0 = time.monotonic()
        got, r = get_bytes(s3_server, tmp_path, "net/n", endpoint=url, S3_TIMEOUT_MS=300,
                           S3_MAX_ATTEMPTS=2)
        assert r.last.startswith("err EAGAIN") and "imed out" in r.last, r
        assert time.monotonic() - t0 < 5
        proxy.set_mode("pass")
        got, r = get_bytes(s3_server, tmp_path, "net/n", endpoint=url, S3_TIMEOUT_MS=2000)
        assert ok(r) and got == b"net"


def test_a_corrupted_upload_is_refused_and_sent_again(s3_server, tmp_path):
    data = os.urandom(300_000)
    with S3FaultProxy(s3_server.port) as proxy:
        proxy.corrupt(1, methods=("PUT",))
        r = ok(put_bytes(s3_server, tmp_path, "corrupt/c", data, endpoint=proxy.url))
        assert r.stats["retries"] == 1, r
        assert [q["status"] for q in s3_server.requests() if "/corrupt/c" in q["url"]] == [400, 200]
        assert get_bytes(s3_server, tmp_path, "corrupt/c")[0] == data
        # from a file, every attempt corrupted
        proxy.corrupt(100, methods=("PUT",))
        r = put_bytes(s3_server, tmp_path, "corrupt/c", data[:1000], cmd="put-file",
                      endpoint=proxy.url, S3_MAX_ATTEMPTS=2)
        assert r.last.startswith("err EIO PUT") and "HTTP 400: BadDigest: The Content-MD5 " \
            "you specified did not match what we received. (2 attempts)" in r.last, r
    assert get_bytes(s3_server, tmp_path, "corrupt/c")[0] == data     # the old one stays


def test_a_corrupted_download_is_detected(s3_server, tmp_path):
    data = os.urandom(200_000)
    ok(put_bytes(s3_server, tmp_path, "flip/d", data))
    with FaultProxy("127.0.0.1", s3_server.port) as proxy:
        url = "http://127.0.0.1:%d" % proxy.port
        # every chunk of every answer past its headers has a bit flipped
        proxy.set_mode("flip", rate=1.0, after=2048, seed=7)
        got, r = get_bytes(s3_server, tmp_path, "flip/d", endpoint=url, S3_MAX_ATTEMPTS=2)
        assert r.last.startswith("err EIO GET") and "is not its ETag" in r.last, r
        assert "(2 attempts)" in r.last and proxy.flipped >= 2, r
        proxy.set_mode("pass")
        got, r = get_bytes(s3_server, tmp_path, "flip/d", endpoint=url)
        assert ok(r) and got == data


def test_cancel_ends_a_call_at_once(s3_server, tmp_path):
    """The cancel flag, set from another thread, ends a call waiting out a
    backoff: -EINTR, without the remaining attempts."""
    with S3FaultProxy(s3_server.port) as proxy:
        proxy.fail(100, status=503, code="SlowDown")
        t0 = time.monotonic()
        r = put_bytes(s3_server, tmp_path, "cancel/x", b"x", endpoint=proxy.url,
                      S3_BACKOFF_MS=10000, S3_MAX_ATTEMPTS=10, S3_CANCEL_AFTER_MS=300)
        assert r.last.startswith("err EINTR PUT %s/%s/cancel/x: cancelled"
                                 % (proxy.url, s3_server.bucket)), r
        assert time.monotonic() - t0 < 3 and proxy.requests == 1, r


def test_https_with_the_endpoints_ca(tmp_path):
    pki = tls_pki.make_pki(str(tmp_path / "pki"), [("ca", "s3", None)])
    with S3Server(str(tmp_path / "s3"), tls=(pki("s3.key"), pki("s3.crt"))) as s3:
        assert s3.url.startswith("https://")
        ok(put_bytes(s3, tmp_path, "tls/x", b"over tls", S3_TLS_CA=pki("ca.crt")))
        got, r = get_bytes(s3, tmp_path, "tls/x", S3_TLS_CA=pki("ca.crt"))
        assert ok(r) and got == b"over tls"
        got, r = get_bytes(s3, tmp_path, "tls/x", S3_TLS_CA=pki("other-ca.crt"),
                           S3_MAX_ATTEMPTS=1)
        assert r.last.startswith("err EAGAIN GET %s/" % s3.url) and "certificate" in r.last, r
