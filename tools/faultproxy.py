"""A TCP fault proxy for 127.0.0.1: put it between the device and its server
and switch what the network does at run time.

Modes (set_mode, or a line on stdin with the CLI):
  pass       forward both ways
  blackhole  stop forwarding and keep every socket open: no data, no FIN,
             like a NAT that lost its entry or a server that hung. With
             after_bytes=N, the proxy passes N more bytes server -> device,
             then flips to blackhole by itself (mid-frame, mid-reply).
  reset      abort every open connection with an RST (SO_LINGER 0), and each
             new one as it arrives
  refuse     stop listening: a connect gets ECONNREFUSED
  slow       forward with latency_ms added per chunk and at most rate bytes/s

    with FaultProxy(("127.0.0.1", 8765)) as p:    # the device connects to p.port
        p.set_mode("blackhole")

    python -m tools.faultproxy --target 127.0.0.1:8765 [--listen 127.0.0.1:0] [--mode pass]
"""

import argparse
import asyncio
import socket
import struct
import sys
import threading

MODES = ("pass", "blackhole", "reset", "refuse", "slow")
_CHUNK = 16384


def _rst(writer):
    """Close with an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class FaultProxy:
    def __init__(self, target, listen=("127.0.0.1", 0), mode="pass"):
        if mode not in MODES:
            raise ValueError("mode must be one of %s, not %r" % (", ".join(MODES), mode))
        self.target = target
        self.host, self.port = listen
        self.mode = mode
        self.after_bytes = None
        self._armed_at = 0
        self.latency_ms = 0
        self.rate = 0
        self.connections = 0  # accepted so far
        self.bytes_down = 0  # server -> device, all connections
        self._conns = set()  # (client writer, upstream writer)
        self._server = None
        self._loop = None
        self._thread = None
        self._wake = None  # set whenever the mode changes, so blackholed pumps resume

    # ---- control (thread-safe) -------------------------------------------------------
    def set_mode(self, mode, after_bytes=None, latency_ms=0, rate=0):
        if mode not in MODES:
            raise ValueError("mode must be one of %s, not %r" % (", ".join(MODES), mode))
        fut = asyncio.run_coroutine_threadsafe(self._set_mode(mode, after_bytes, latency_ms, rate), self._loop)
        fut.result(10)

    async def _set_mode(self, mode, after_bytes, latency_ms, rate):
        self.mode = "pass" if after_bytes else mode
        self.after_bytes = after_bytes
        self._armed_at = self.bytes_down
        self.latency_ms = latency_ms
        self.rate = rate
        if mode == "reset":
            for pair in list(self._conns):
                for w in pair:
                    _rst(w)
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif mode != "refuse" and self._server is None:
            await self._listen()
        self._wake.set()
        self._wake = asyncio.Event()

    # ---- serving ---------------------------------------------------------------------
    async def _listen(self):
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader, writer):
        self.connections += 1
        if self.mode == "reset":
            _rst(writer)
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            _rst(writer)  # the server is down: the device sees the connection die, as through a NAT
            return
        pair = (writer, up_w)
        self._conns.add(pair)
        try:
            await asyncio.gather(self._pump(reader, up_w, False), self._pump(up_r, writer, True))
        finally:
            self._conns.discard(pair)
            for w in pair:
                w.close()

    async def _pump(self, src, dst, down):
        """Copy src -> dst under the current mode; down: True for server -> device."""
        try:
            while True:
                data = await src.read(_CHUNK)
                while self.mode == "blackhole":
                    await self._wake.wait()  # hold the data (and the sockets) until the mode changes
                if not data:
                    break
                if self.mode == "slow":
                    if self.latency_ms:
                        await asyncio.sleep(self.latency_ms / 1000)
                    if self.rate:
                        await asyncio.sleep(len(data) / self.rate)
                if down and self.after_bytes is not None:
                    left = max(self.after_bytes - (self.bytes_down - self._armed_at), 0)
                    if len(data) >= left:
                        dst.write(data[:left])
                        self.bytes_down += left
                        self.after_bytes = None
                        self.mode = "blackhole"  # the link goes dark mid-stream
                        while self.mode == "blackhole":
                            await self._wake.wait()
                        data = data[left:]
                if down:
                    self.bytes_down += len(data)
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if dst.can_write_eof() and not dst.is_closing():
                try:
                    dst.write_eof()
                except OSError:
                    pass

    async def start(self):
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self.mode != "refuse":
            await self._listen()
        return self

    async def aclose(self):
        if self._server is not None:
            self._server.close()
            self._server = None
        for pair in list(self._conns):
            for w in pair:
                w.transport.abort()
        self.mode = "pass"
        self._wake.set()

    async def _shutdown(self):
        await self.aclose()
        pumps = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in pumps:
            t.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)

    # ---- thread API for synchronous tests ----------------------------------------------
    def start_in_thread(self):
        ready = threading.Event()

        def run():
            loop = asyncio.new_event_loop()
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self):
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self):
        return self.start_in_thread()

    def __exit__(self, *exc):
        self.stop()


def _addr(text):
    host, _, port = text.rpartition(":")
    try:
        n = int(port)
    except ValueError:
        n = -1
    if not host or not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError("%r is not HOST:PORT" % text)
    return host, n


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.faultproxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", type=_addr, required=True, metavar="HOST:PORT", help="the real server")
    p.add_argument("--listen", type=_addr, default=("127.0.0.1", 0), metavar="HOST:PORT",
                   help="where the device connects (default 127.0.0.1:0, a free port)")
    p.add_argument("--mode", choices=MODES, default="pass", help="starting mode (default pass)")
    a = p.parse_args(argv)
    try:
        proxy = FaultProxy(a.target, a.listen, a.mode).start_in_thread()
    except OSError as e:
        print("faultproxy: cannot listen on %s:%d: %s" % (a.listen[0], a.listen[1], e.strerror or e),
              file=sys.stderr)
        return 1
    print("fault proxy on %s:%d -> %s:%d (%s); type a mode (%s), or 'slow MS RATE'"
          % (proxy.host, proxy.port, a.target[0], a.target[1], a.mode, " ".join(MODES)), flush=True)
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            try:
                if words[0] == "slow":
                    proxy.set_mode("slow", latency_ms=int(words[1]) if len(words) > 1 else 100,
                                   rate=int(words[2]) if len(words) > 2 else 0)
                else:
                    proxy.set_mode(words[0])
                print("mode %s" % words[0], flush=True)
            except (ValueError, IndexError) as e:
                print("faultproxy: %s" % e, file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
