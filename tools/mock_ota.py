"""Mock xiaozhi OTA endpoint (spec §5) with a scriptable activation flow.

    python -m tools.mock_ota --port 8003 --ws-url ws://127.0.0.1:8000/xiaozhi/v1/ \
        --code 123456 --pending 2 --fail-checks 1

Every check-version POST is answered with server_time, firmware (the device's
own version, no URL) and websocket, like xinnan-tech/xiaozhi-esp32-server.
Scripting: the first --fail-checks checks get HTTP --fail-status; with --code
the checks carry an activation section until the device has POSTed
…/activate, which answers 202 --pending times and then 200. Every request is
recorded (and printed as a JSON line with --log) so tests assert on the wire.

From Python (e.g. tools/sim.py or a test):
    mock = MockOta(ws_url=..., code="123456", pending=2)
    await mock.start("127.0.0.1", 0); mock.url  # http://127.0.0.1:PORT/xiaozhi/ota/
    status, ctype, body = mock.handle(method, path, headers, body)  # to mount it elsewhere
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time

MAX_BODY = 65536
OTA_PATH = "/xiaozhi/ota/"


def _is_activate(path: str) -> bool:
    """Whether a request path (query string and all) is the …/activate endpoint."""
    return path.split("?", 1)[0].rstrip("/").endswith("/activate")


class MockOta:
    def __init__(
        self,
        ws_url: str = "ws://127.0.0.1:8000/xiaozhi/v1/",
        token: str = "",
        version: int | None = None,
        code: str | None = None,
        message: str = "Enter the code on the control panel",
        challenge: str = "mock-challenge",
        pending: int = 0,
        fail_checks: int = 0,
        fail_status: int = 500,
        mqtt: dict | None = None,
        timezone_offset: int = 480,
        log: bool = False,
    ):
        self.ws_url = ws_url
        self.token = token
        self.version = version
        self.code = code
        self.message = message
        self.challenge = challenge
        self.pending = pending
        self.fail_checks = fail_checks
        self.fail_status = fail_status
        self.mqtt = mqtt
        self.timezone_offset = timezone_offset
        self.log = log
        self.activated = code is None
        self.requests: list[dict] = []
        self.url = ""
        self._server: asyncio.base_events.Server | None = None
        self._t0 = time.monotonic()

    # -- the endpoint logic, independent of the transport ---------------------
    def _record(self, method, path, headers, body, status):
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        entry = {
            "t": round((time.monotonic() - self._t0) * 1000),
            "method": method,
            "path": path,
            "headers": headers,
            "json": parsed,
            "status": status,
        }
        self.requests.append(entry)
        if self.log:
            print(json.dumps(entry), flush=True)

    def _reply(self, status, obj=None, text=None):
        if obj is not None:
            return status, "application/json", json.dumps(obj, separators=(",", ":")).encode()
        return status, "text/plain; charset=utf-8", (text or "").encode()

    def handle(self, method: str, path: str, headers: dict, body: bytes):
        """-> (status, content_type, body). headers: lower-case names."""
        status, ctype, out = self._handle(method, path, headers, body)
        self._record(method, path, headers, body, status)
        return status, ctype, out

    def _handle(self, method, path, headers, body):
        if method == "GET":
            return self._reply(200, text="OTA interface is running; websocket address: " + self.ws_url)
        if method != "POST":
            return self._reply(405, text="method not allowed")
        if _is_activate(path):
            if self.activated:
                return self._reply(200, {"success": True})
            if self.pending > 0:
                self.pending -= 1
                return self._reply(202, {"success": False, "message": "waiting for the code"})
            self.activated = True
            return self._reply(200, {"success": True})
        if self.fail_checks > 0:
            self.fail_checks -= 1
            return self._reply(self.fail_status, text="scripted failure")
        if not headers.get("device-id") or not headers.get("client-id"):
            # What xinnan's server answers (still HTTP 200).
            return self._reply(200, {"success": False, "message": "request error."})
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return self._reply(400, text="body is not JSON")
        app = req.get("application") if isinstance(req, dict) else None
        dev_version = app.get("version", "0.0.0") if isinstance(app, dict) else "0.0.0"
        reply = {
            "server_time": {"timestamp": int(time.time() * 1000), "timezone_offset": self.timezone_offset},
            "firmware": {"version": dev_version, "url": ""},
        }
        ws = {"url": self.ws_url, "token": self.token}
        if self.version:
            ws["version"] = self.version
        reply["websocket"] = ws
        if self.mqtt:
            reply["mqtt"] = self.mqtt
        if not self.activated:
            reply["activation"] = {
                "code": self.code,
                "message": self.message,
                "challenge": self.challenge,
                "timeout_ms": 30000,
            }
        return self._reply(200, reply)

    # -- a small asyncio HTTP/1.1 transport ------------------------------------
    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            parts = line.decode("latin-1").split()
            if len(parts) != 3:
                return
            method, path, _ = parts
            headers = {}
            for _ in range(100):
                h = await asyncio.wait_for(reader.readline(), 10)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            try:
                n = int(headers.get("content-length") or 0)
            except ValueError:
                n = -1
            if n < 0:
                status, ctype, out = 400, "text/plain", b"bad Content-Length"
            elif n > MAX_BODY:
                status, ctype, out = 413, "text/plain", b"too large"
            else:
                body = await asyncio.wait_for(reader.readexactly(n), 10) if n else b""
                status, ctype, out = self.handle(method, path, headers, body)
            reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 405: "Method Not Allowed",
                      413: "Payload Too Large"}.get(status, "Error")
            writer.write(
                (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                 f"Content-Length: {len(out)}\r\nConnection: close\r\n\r\n").encode() + out
            )
            await writer.drain()
        except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> MockOta:
        self._server = await asyncio.start_server(self._conn, host, port)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{host}:{port}{OTA_PATH}"
        return self

    async def close(self):
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    def checks(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and not _is_activate(r["path"])]

    def activations(self) -> list[dict]:
        return [r for r in self.requests if _is_activate(r["path"])]


@contextlib.contextmanager
def serve_in_thread(mock: MockOta, host: str = "127.0.0.1", port: int = 0):
    """Run the mock on its own event loop in a thread (for sync pytest tests)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    failed = []

    def run():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(mock.start(host, port))
        except OSError as e:  # raised to the caller below
            failed.append(e)
            return
        finally:
            ready.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    if not ready.wait(10):
        raise RuntimeError("mock OTA server did not start")
    if failed:
        t.join()
        loop.close()
        raise failed[0]
    try:
        yield mock
    finally:
        asyncio.run_coroutine_threadsafe(mock.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
        loop.close()


def _port(text: str) -> int:
    try:
        p = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {text!r}") from None
    if not 0 <= p < 65536:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {p}")
    return p


def _ws_url(text: str) -> str:
    if not text.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError(f"--ws-url must start with ws:// or wss://, got {text!r}")
    return text


def _code(text: str) -> str:
    if not (text.isdigit() and 4 <= len(text) <= 8):
        raise argparse.ArgumentTypeError(f"--code must be 4 to 8 digits, got {text!r}")
    return text


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {n}")
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.mock_ota", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=_port, default=8003, help="port (0 = any free port; default 8003)")
    ap.add_argument("--ws-url", type=_ws_url, default="ws://127.0.0.1:8000/xiaozhi/v1/",
                    help="websocket.url handed to the device")
    ap.add_argument("--token", default="", help="websocket.token handed to the device")
    ap.add_argument("--version", type=int, choices=(1, 2, 3), help="websocket.version (binary protocol)")
    ap.add_argument("--code", type=_code, help="require activation with this code")
    ap.add_argument("--pending", type=_count, default=0, help="answer /activate with 202 this many times first")
    ap.add_argument("--fail-checks", type=_count, default=0, help="fail this many checks first")
    ap.add_argument("--fail-status", type=int, default=500, help="HTTP status of a failed check (default 500)")
    ap.add_argument("--log", action="store_true", help="print every request as a JSON line")
    args = ap.parse_args(argv)
    mock = MockOta(ws_url=args.ws_url, token=args.token, version=args.version, code=args.code,
                   pending=args.pending, fail_checks=args.fail_checks, fail_status=args.fail_status,
                   log=args.log)

    async def run():
        try:
            await mock.start(args.host, args.port)
        except OSError as e:
            print(f"mock_ota: FAILED: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
                  file=sys.stderr)
            return 1
        print(f"mock OTA listening on {mock.url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await mock.close()
        return 0

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
