# A small asyncio HTTP/1.1 client for MicroPython (and CPython, for tests).
# One request per connection (Connection: close), Content-Length, chunked and
# read-to-close bodies, a few redirects, one deadline for the whole exchange,
# TLS with a configurable CA, and a body-size guard so a misbehaving server
# cannot exhaust the heap.
#   r = await httpclient.request("POST", url, json={"a": 1}, timeout_ms=30000)
#   r.status, r.headers["content-type"], r.body, r.json()
try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio

try:
    import json as _json
except ImportError:  # pragma: no cover
    import ujson as _json

import tlsctx

_MAX_LINE = 4096  # longest status or header line accepted
_MAX_HEADERS = 64
_REDIRECTS = (301, 302, 303, 307, 308)


class HTTPError(Exception):
    """Anything that kept a request from producing a response: bad URL,
    connect/TLS failure, timeout, oversized or malformed reply."""


class Response:
    def __init__(self, status, reason, headers, body, url):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case names; repeated headers joined with ", "
        self.body = body
        self.url = url  # the final URL after redirects

    def text(self):
        return self.body.decode()

    def json(self):
        try:
            return _json.loads(self.body)
        except ValueError:
            raise HTTPError("reply from %s is not JSON" % self.url)


def parse_url(url):
    """-> (scheme, host, port, path). path keeps the query string verbatim."""
    if url.startswith("http://"):
        scheme, rest, port = "http", url[7:], 80
    elif url.startswith("https://"):
        scheme, rest, port = "https", url[8:], 443
    else:
        raise HTTPError("not an http:// or https:// URL: %r" % url)
    i = rest.find("/")
    j = rest.find("?")
    if i < 0 or (0 <= j < i):
        i = j
    if i < 0:
        hostport, path = rest, "/"
    else:
        hostport, path = rest[:i], rest[i:]
        if path[0] == "?":
            path = "/" + path
    if "@" in hostport:
        raise HTTPError("credentials in URLs are not supported: %r" % url)
    if ":" in hostport:
        host, p = hostport.rsplit(":", 1)
        try:
            port = int(p)
        except ValueError:
            raise HTTPError("bad port in URL %r" % url)
        if not 0 < port < 65536:
            raise HTTPError("bad port in URL %r" % url)
    else:
        host = hostport
    if not host:
        raise HTTPError("no host in URL %r" % url)
    return scheme, host, port, path


def join_url(base, location):
    """Resolve a redirect Location against the URL it came from."""
    if location.startswith("http://") or location.startswith("https://"):
        return location
    scheme, host, port, path = parse_url(base)
    origin = "%s://%s" % (scheme, host)
    if port != (443 if scheme == "https" else 80):
        origin += ":%d" % port
    if location.startswith("//"):
        return scheme + ":" + location
    if location.startswith("/"):
        return origin + location
    return origin + path.split("?", 1)[0].rsplit("/", 1)[0] + "/" + location


async def _readline(reader):
    line = await reader.readline()
    if not line:
        raise HTTPError("connection closed before the reply was complete")
    if len(line) > _MAX_LINE or not line.endswith(b"\n"):
        raise HTTPError("header line too long or truncated")
    return line


async def _read_body(reader, headers, max_body):
    te = headers.get("transfer-encoding", "").lower()
    if "chunked" in te:
        out = bytearray()
        while True:
            line = await _readline(reader)
            try:
                n = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HTTPError("bad chunk size %r" % line[:20])
            if n == 0:
                # Trailers, up to the blank line.
                while (await _readline(reader)).strip():
                    pass
                return bytes(out)
            if len(out) + n > max_body:
                raise HTTPError("reply body larger than %d bytes" % max_body)
            out += await reader.readexactly(n)
            if await reader.readexactly(2) != b"\r\n":
                raise HTTPError("chunk not followed by CRLF")
    cl = headers.get("content-length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise HTTPError("bad Content-Length %r" % cl)
        if n < 0:
            raise HTTPError("bad Content-Length %r" % cl)
        if n > max_body:
            raise HTTPError("reply body of %d bytes is larger than %d" % (n, max_body))
        return await reader.readexactly(n) if n else b""
    # Neither: the body runs to the end of the connection.
    out = bytearray()
    while True:
        b = await reader.read(1024)
        if not b:
            return bytes(out)
        if len(out) + len(b) > max_body:
            raise HTTPError("reply body larger than %d bytes" % max_body)
        out += b


async def _once(method, url, headers, body, max_body, verify, cadata):
    scheme, host, port, path = parse_url(url)
    try:
        ctx = tlsctx.client_context(verify, cadata) if scheme == "https" else None
    except tlsctx.TLSError as e:
        raise HTTPError("https to %s: %s" % (host, e))
    try:
        if ctx:
            reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
        else:
            reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        raise HTTPError("cannot connect to %s:%d: %s %s" % (host, port, type(e).__name__, e))
    except Exception as e:  # ssl errors are ValueError/SSLError depending on port
        raise HTTPError("TLS with %s:%d failed: %s %s" % (host, port, type(e).__name__, e))
    try:
        hosthdr = host if port == (443 if scheme == "https" else 80) else "%s:%d" % (host, port)
        parts = ["%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (method, path, hosthdr)]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            parts.append("Content-Length: %d\r\n" % (len(body) if body else 0))
        for k, v in headers:
            if "\r" in k or "\n" in k or "\r" in str(v) or "\n" in str(v):
                raise HTTPError("header %r contains a line break" % k)
            parts.append("%s: %s\r\n" % (k, v))
        parts.append("\r\n")
        writer.write("".join(parts).encode())
        if body:
            writer.write(body)
        await writer.drain()

        status_line = await _readline(reader)
        fields = status_line.decode().split(None, 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/1."):
            raise HTTPError("not an HTTP reply: %r" % status_line[:40])
        try:
            status = int(fields[1])
        except ValueError:
            raise HTTPError("bad status in %r" % status_line[:40])
        reason = fields[2].strip() if len(fields) > 2 else ""
        hdrs = {}
        for _ in range(_MAX_HEADERS + 1):
            line = await _readline(reader)
            if line in (b"\r\n", b"\n"):
                break
            k, sep, v = line.decode().partition(":")
            if not sep:
                raise HTTPError("malformed header line %r" % line[:40])
            k = k.strip().lower()
            v = v.strip()
            hdrs[k] = hdrs[k] + ", " + v if k in hdrs else v
        else:
            raise HTTPError("more than %d header lines" % _MAX_HEADERS)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        else:
            data = await _read_body(reader, hdrs, max_body)
        return Response(status, reason, hdrs, data, url)
    except (EOFError, OSError) as e:
        # readexactly raises EOFError (MicroPython) / IncompleteReadError (an
        # EOFError in CPython) on a short body.
        raise HTTPError("connection to %s:%d failed: %s %s" % (host, port, type(e).__name__, e))
    except ValueError as e:
        # MicroPython's TLS handshakes on the first write and reports a bad
        # certificate as ValueError ("...CN does not match...").
        what = "TLS with" if ctx else "bad reply from"
        raise HTTPError("%s %s:%d failed: %s" % (what, host, port, " ".join(str(e).split())))
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except Exception:
            pass


async def request(
    method,
    url,
    headers=None,
    body=None,
    json=None,
    timeout_ms=30000,
    max_body=16384,
    max_redirects=3,
    verify=True,
    cadata=None,
):
    """Send one request and return a Response for any status code.
    headers: list of (name, value) pairs or a dict. json: an object sent as an
    application/json body. timeout_ms bounds the whole exchange, redirects
    included. Raises HTTPError (never a bare OSError) on failure."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
    if json is not None:
        body = _json.dumps(json)
        if not any(k.lower() == "content-type" for k, _ in hdrs):
            hdrs.append(("Content-Type", "application/json"))
    if isinstance(body, str):
        body = body.encode()
    try:
        return await asyncio.wait_for(
            _follow(method, url, hdrs, body, max_body, max_redirects, verify, cadata), timeout_ms / 1000
        )
    except asyncio.TimeoutError:
        raise HTTPError("%s %s timed out after %d ms" % (method, url, timeout_ms))


async def _follow(method, url, hdrs, body, max_body, max_redirects, verify, cadata):
    redirects = 0
    while True:
        r = await _once(method, url, hdrs, body, max_body, verify, cadata)
        if r.status not in _REDIRECTS or "location" not in r.headers:
            return r
        redirects += 1
        if redirects > max_redirects:
            raise HTTPError("more than %d redirects from %s" % (max_redirects, url))
        nxt = join_url(url, r.headers["location"])
        if parse_url(nxt)[1] != parse_url(url)[1]:
            # Credentials are for the host they were given to.
            hdrs = [h for h in hdrs if h[0].lower() not in ("authorization", "cookie")]
        if r.status in (301, 302, 303) and method != "HEAD":
            method, body = "GET", None
            hdrs = [h for h in hdrs if h[0].lower() != "content-type"]
        url = nxt
