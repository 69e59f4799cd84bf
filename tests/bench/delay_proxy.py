"""delay_proxy.py - a TCP proxy that adds a fixed one-way delay in each
direction, for benchmarks that need a wide-area round trip on 127.0.0.1.

    with DelayProxy("127.0.0.1", target_port, delay_ms=20) as p:
        url = "http://127.0.0.1:%d" % p.port      # +40 ms per round trip

Every chunk read from one side is written to the other `delay_ms` after it
arrived, in order, so the proxy adds latency without cutting bandwidth
(as a long link does).  One asyncio loop in a background thread.
"""

import asyncio
import socket
import threading
import time


class DelayProxy:
    def __init__(self, target_host, target_port, delay_ms):
        self.target = (target_host, target_port)
        self.delay = delay_ms / 1000.0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None
        self.port = None

    async def _pipe(self, reader, writer):
        queue = asyncio.Queue()

        async def pump():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(pump())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                queue.put_nowait((time.monotonic() + self.delay, data))
        except (ConnectionError, OSError):
            pass
        queue.put_nowait((0, None))
        try:
            await sender
        except (ConnectionError, OSError):
            pass

    async def _handle(self, creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError:
            cwriter.close()
            return
        for w in (cwriter, swriter):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(self._pipe(creader, swriter), self._pipe(sreader, cwriter))

    def __enter__(self):
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop)
        self.server = fut.result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _shutdown(self):
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
