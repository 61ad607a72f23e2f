"""A TCP proxy that makes loopback look like a slow link, for benchmarks.

Every chunk is held `delay_s` in each direction (order kept), and the first
byte from the client waits one extra round trip, standing for the TCP
handshake a real link would cost before the client could send anything.

    proxy = await DelayProxy("127.0.0.1", 8000, delay_s=0.050).start()
    ... connect to 127.0.0.1:proxy.port ...
    await proxy.stop()
"""

import asyncio
import contextlib
import time


class DelayProxy:
    def __init__(self, host, port, delay_s):
        self.target = (host, port)
        self.delay_s = delay_s
        self._server = None
        self._writers = set()

    @property
    def port(self):
        return self._server.sockets[0].getsockname()[1]

    async def start(self):
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self):
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()  # the pipes see the connection lost and return
        await self._server.wait_closed()

    async def _pipe(self, reader, writer, first_extra):
        q = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await q.get()
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    writer.write_eof() if writer.can_write_eof() else writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        extra = first_extra
        try:
            while True:
                data = await reader.read(65536)
                q.put_nowait((time.perf_counter() + self.delay_s + extra, data))
                extra = 0.0
                if not data:
                    break
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()

    async def _handle(self, c_reader, c_writer):
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            return
        self._writers |= {c_writer, s_writer}
        try:
            await asyncio.gather(self._pipe(c_reader, s_writer, 2 * self.delay_s),
                                 self._pipe(s_reader, c_writer, 0.0))
        finally:
            for w in (c_writer, s_writer):
                with contextlib.suppress(Exception):
                    w.close()
            self._writers -= {c_writer, s_writer}
