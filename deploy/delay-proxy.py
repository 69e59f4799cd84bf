#!/usr/bin/env python3
"""delay-proxy.py - a TCP proxy that delays every byte, for local-cluster.sh.

usage: delay-proxy.py [--source IP=MS ...] [--tag TEXT] ROUTE...

  ROUTE          LISTEN_HOST:PORT=TARGET_HOST:PORT[@MS]: accept on the
                 listen address, connect each accepted connection to the
                 target, delay its bytes by MS (default 0) in each direction
  --source IP=MS a connection accepted from IP is delayed by MS more
  --tag TEXT     not used: it names the proxy in `ps` (local-cluster.sh
                 passes its state directory, to know its proxy by it)

The delay of a connection is its route's MS plus its source's MS; every
chunk read from one side is written to the other side that long after it
was read, in order, in both directions, so a request/response round trip
through the proxy costs twice the delay.  local-cluster.sh gives route MS
to "the target is a slow node" and source MS to "the client is a slow
node": traffic between two slowed nodes pays both, as it would if each
node sat behind a slow link.  Connection setup itself is not delayed; an
EOF (half-close) or a reset is passed on after the data before it.

Each direction buffers at most QUEUE_CHUNKS chunks of CHUNK bytes, then
stops reading from its source (backpressure instead of unbounded memory).
Only the Python standard library is used.  SIGTERM or SIGINT closes every
listener and connection and exits 0.
"""

import argparse
import asyncio
import logging
import signal
import socket
import sys

CHUNK = 64 * 1024
QUEUE_CHUNKS = 256

log = logging.getLogger("delay-proxy")


def parse_hostport(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError("%r is not HOST:PORT" % text)
    return host, int(port)


def parse_ms(text):
    try:
        ms = float(text)
    except ValueError:
        ms = -1.0
    if ms < 0:
        raise argparse.ArgumentTypeError("%r is not a delay in milliseconds" % text)
    return ms


def parse_route(text):
    listen, sep, rest = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("%r is not LISTEN=TARGET[@MS]" % text)
    target, _, ms = rest.partition("@")
    return parse_hostport(listen), parse_hostport(target), parse_ms(ms or "0")


def parse_source(text):
    ip, sep, ms = text.partition("=")
    if not sep or not ip:
        raise argparse.ArgumentTypeError("%r is not IP=MS" % text)
    return ip, parse_ms(ms)


def nodelay(writer):
    """Small writes (heartbeats, HTTP requests) must not wait for Nagle."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


async def read_side(reader, queue, delay):
    """Read chunks, stamp each with the time it may be written."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(CHUNK)
            await queue.put((loop.time() + delay, data))
            if not data:
                return
    except (ConnectionError, OSError):
        await queue.put((loop.time() + delay, None))     # reset: pass it on


async def write_side(writer, queue):
    """Write each chunk when it is due; b"" is an EOF, None a reset."""
    loop = asyncio.get_running_loop()
    while True:
        due, data = await queue.get()
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if data is None:
            raise ConnectionResetError("peer reset")
        if not data:
            if writer.can_write_eof():
                writer.write_eof()
            return
        writer.write(data)
        await writer.drain()


async def handle(client_r, client_w, target, delay, sources):
    peer = client_w.get_extra_info("peername") or ("?", 0)
    delay = (delay + sources.get(peer[0], 0.0)) / 1000.0
    try:
        server_r, server_w = await asyncio.open_connection(*target)
    except OSError as e:
        log.info("%s -> %s:%d: connect failed: %s", peer[0], target[0], target[1], e)
        client_w.close()
        return
    nodelay(client_w)
    nodelay(server_w)
    up, down = asyncio.Queue(QUEUE_CHUNKS), asyncio.Queue(QUEUE_CHUNKS)
    tasks = [asyncio.ensure_future(c) for c in (
        read_side(client_r, up, delay), write_side(server_w, up),
        read_side(server_r, down, delay), write_side(client_w, down))]
    try:
        # Both directions end normally (EOF each way), or one fails (a reset
        # or a write error) and the whole connection goes.
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception() is not None:
                log.debug("%s -> %s:%d: %s", peer[0], target[0], target[1], t.exception())
    finally:
        for t in tasks:
            t.cancel()
        for w in (client_w, server_w):
            w.close()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve(routes, sources):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = []
    for listen, target, ms in routes:
        def on_accept(r, w, target=target, ms=ms):
            return handle(r, w, target, ms, sources)
        servers.append(await asyncio.start_server(on_accept, listen[0], listen[1],
                                                  reuse_address=True))
        log.info("listening on %s:%d -> %s:%d, delay %g ms (+ source delay)",
                 listen[0], listen[1], target[0], target[1], ms)
    await stop.wait()
    for s in servers:
        s.close()
    log.info("stopping")


def main():
    ap = argparse.ArgumentParser(description="TCP proxy that delays every byte")
    ap.add_argument("--source", action="append", default=[], type=parse_source,
                    help="IP=MS: extra delay for connections from IP")
    ap.add_argument("--tag", help="ignored: identifies the proxy in ps")
    ap.add_argument("routes", nargs="+", type=parse_route,
                    metavar="LISTEN_HOST:PORT=TARGET_HOST:PORT[@MS]")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s delay-proxy: %(message)s")
    asyncio.run(serve(args.routes, dict(args.source)))


if __name__ == "__main__":
    main()
