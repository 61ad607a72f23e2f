"""The HTTP side of the gateway: the OTA proxy on the same port as the WebSocket.

POST …/ota/          → forwarded to the upstream OTA URL; the reply comes back
                       with websocket.url rewritten to the gateway's public URL,
                       websocket.token removed (the gateway keeps it for its own
                       upstream connection), an mqtt block replaced by websocket
                       (the firmware speaks WebSocket only) and the firmware block
                       removed: a MicroPython device must never be handed an
                       ESP-IDF binary.
POST …/ota/activate  → passed through unchanged.
GET  …/ota/          → a status line.
Without an upstream OTA the gateway answers from its own config.
"""

import asyncio
import json
import logging
import ssl
import time
import urllib.parse

log = logging.getLogger("gateway.ota")

MAX_HEAD = 16384
MAX_BODY = 65536
_REASONS = {200: "OK", 202: "Accepted", 204: "No Content", 400: "Bad Request", 404: "Not Found",
            405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 502: "Bad Gateway"}
# Request headers that describe the hop, not the device; everything else is forwarded.
# The client's own X-Forwarded-For / X-Real-IP are dropped: the gateway sets them
# to the address it resolved (clientip.py), so a device cannot pick its own.
_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive", "upgrade",
        "proxy-connection", "te", "trailer", "accept-encoding", "x-forwarded-for", "x-real-ip"}


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Request:
    def __init__(self, method, target, headers, body=b""):
        self.method = method
        self.target = target
        self.path = urllib.parse.urlsplit(target).path
        self.headers = headers  # list of (name, value), order kept
        self.body = body

    def header(self, name, default=None):
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return default


def parse_head(head):
    """Request line and headers of an HTTP/1.x request head (bytes, no final CRLFCRLF)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
        raise HttpError(400, "bad request head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, "bad request line")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise HttpError(400, "bad header line")
        headers.append((name.strip(), value.strip()))
    return Request(parts[0].upper(), parts[1], headers)


def is_ws_upgrade(req):
    return req.method == "GET" and "websocket" in (req.header("Upgrade", "") or "").lower()


def body_length(req):
    if (req.header("Transfer-Encoding") or "").lower() not in ("", "identity"):
        raise HttpError(411, "chunked request bodies are not supported; send Content-Length")
    cl = req.header("Content-Length")
    if cl is None:
        return 0
    if not cl.isdigit():
        raise HttpError(400, "bad Content-Length")
    n = int(cl)
    if n > MAX_BODY:
        raise HttpError(413, f"request body over {MAX_BODY} bytes")
    return n


def response(status, body=b"", content_type="application/json", extra=()):
    if isinstance(body, str):
        body = body.encode()
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            "Content-Type: " + content_type,
            f"Content-Length: {len(body)}",
            "Connection: close",
            "Access-Control-Allow-Origin: *"]
    head.extend("{}: {}".format(*kv) for kv in extra)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def json_response(status, obj):
    return response(status, json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


async def http_request(method, url, headers, body, timeout):
    """A minimal HTTP/1.1 client (one request, Connection: close): (status, headers dict, body)."""
    u = urllib.parse.urlsplit(url)
    https = u.scheme == "https"
    port = u.port or (443 if https else 80)
    target = (u.path or "/") + ("?" + u.query if u.query else "")
    host = u.hostname if u.port is None else f"{u.hostname}:{u.port}"
    lines = [f"{method} {target} HTTP/1.1", "Host: " + host]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    req = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def run():
        ctx = ssl.create_default_context() if https else None
        reader, writer = await asyncio.open_connection(u.hostname, port, ssl=ctx,
                                                       server_hostname=u.hostname if https else None)
        try:
            writer.write(req)
            await writer.drain()
            data = await _read_all(reader)
        finally:
            writer.close()
        return data

    data = await asyncio.wait_for(run(), timeout)
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise ConnectionError("truncated HTTP reply")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"bad HTTP status line {lines[0][:60]!r}")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    elif "content-length" in hdrs and hdrs["content-length"].isdigit():
        rest = rest[: int(hdrs["content-length"])]
    return int(parts[1]), hdrs, rest


async def _read_all(reader, limit=4 * MAX_BODY):
    chunks = []
    size = 0
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ConnectionError(f"upstream reply over {limit} bytes")
        chunks.append(chunk)


def _dechunk(data):
    out = bytearray()
    while True:
        line, sep, data = data.partition(b"\r\n")
        if not sep:
            raise ConnectionError("truncated chunked reply")
        n = int(line.split(b";")[0].strip() or b"0", 16)
        if n == 0:
            return bytes(out)
        out += data[:n]
        data = data[n + 2:]


def rewrite_ota_reply(reply, public_url):
    """(reply for the device, upstream websocket token or None). reply is a dict."""
    out = {k: v for k, v in reply.items() if k not in ("firmware", "mqtt", "websocket")}
    ws = reply.get("websocket")
    token = None
    new_ws = {}
    if isinstance(ws, dict):
        new_ws = {k: v for k, v in ws.items() if k not in ("token", "version")}
        token = ws.get("token") or None
    if isinstance(ws, dict) or isinstance(reply.get("mqtt"), dict):
        new_ws["url"] = public_url
        out["websocket"] = new_ws
    return out, token


class OtaProxy:
    def __init__(self, cfg, tokens, audit, clock=time.time):
        self.cfg = cfg
        self.tokens = tokens  # device id -> upstream token, shared with the WebSocket side
        self.audit = audit
        self.clock = clock

    def public_url(self, req):
        if self.cfg.public_url:
            return self.cfg.public_url
        host = req.header("Host") or f"{self.cfg.listen_host}:{self.cfg.listen_port}"
        return f"{'wss' if self.cfg.tls.cert else 'ws'}://{host}/xiaozhi/v1/"

    def own_reply(self, req):
        return {
            "server_time": {"timestamp": int(self.clock() * 1000),
                            "timezone_offset": self.cfg.ota_timezone_offset},
            "websocket": {"url": self.public_url(req)},
        }

    async def handle(self, req, peer_ip):
        """Return the whole HTTP response (bytes) for one request."""
        path = req.path.rstrip("/")
        activate = path.endswith("/activate")
        is_ota = activate or path.endswith("/ota")
        if not is_ota:
            if req.method == "GET":
                return response(200, "Server is running\n", "text/plain; charset=utf-8")
            return json_response(404, {"success": False, "message": "not found"})
        if req.method == "OPTIONS":
            return response(204, b"", extra=(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                                             ("Access-Control-Allow-Headers", "*")))
        if req.method == "GET":
            return response(200, f"OTA proxy is running; devices are sent to {self.public_url(req)}\n",
                            "text/plain; charset=utf-8")
        if req.method != "POST":
            return json_response(405, {"success": False, "message": "use POST"})
        device = req.header("Device-Id", "")
        kind = "activate" if activate else "ota"
        if not self.cfg.upstream_ota:
            self.audit.write(kind, device=device, ip=peer_ip, upstream=None)
            if activate:
                return json_response(200, {"success": True})
            return json_response(200, self.own_reply(req))
        url = self.cfg.upstream_ota
        if activate:
            url = url if url.endswith("/") else url + "/"
            url += "activate"
        fwd = [(k, v) for k, v in req.headers if k.lower() not in _HOP]
        fwd += [("X-Forwarded-For", peer_ip), ("X-Real-IP", peer_ip)]
        try:
            status, hdrs, body = await http_request("POST", url, fwd, req.body, timeout=10.0)
        except (TimeoutError, OSError, ConnectionError, ValueError) as e:
            reason = f"upstream OTA {url} failed: {str(e) or type(e).__name__}"
            log.warning("%s", reason)
            self.audit.write(kind, device=device, ip=peer_ip, upstream=url, result="error", reason=reason)
            return json_response(502, {"success": False, "message": reason})
        ctype = hdrs.get("content-type", "application/json")
        if activate or status != 200:
            self.audit.write(kind, device=device, ip=peer_ip, upstream=url, status=status)
            return response(status, body, ctype)
        try:
            reply = json.loads(body)
            if not isinstance(reply, dict):
                raise ValueError("not an object")  # noqa: TRY004 - caught just below
        except ValueError:
            # Stock answers a request without Device-Id/Client-Id with JSON too, so
            # anything else is a broken upstream, not something to hand a device.
            reason = "upstream OTA reply is not a JSON object"
            self.audit.write(kind, device=device, ip=peer_ip, upstream=url, result="error", reason=reason)
            return json_response(502, {"success": False, "message": reason})
        out, token = rewrite_ota_reply(reply, self.public_url(req))
        if token and device:
            self.tokens[device] = token
        self.audit.write(kind, device=device, ip=peer_ip, upstream=url, status=status,
                         stripped_firmware="firmware" in reply, got_upstream_auth=bool(token))
        return json_response(200, out)
