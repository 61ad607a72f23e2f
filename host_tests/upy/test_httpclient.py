# lib/httpclient: bodies (length, chunked, to-close), guards, redirects, timeouts,
# against a real asyncio server on 127.0.0.1 in the same process.
import asyncio

import httpclient
from httpclient import HTTPError

try:
    from random import getrandbits
except ImportError:  # pragma: no cover
    from urandom import getrandbits

SEEN = []

REPLIES = {
    "/len": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n",
    "/close": b"HTTP/1.0 200 OK\r\n\r\nto the end",
    "/big": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
    "/bigchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"400\r\n" + b"x" * 1024 + b"\r\n" + b"400\r\n" + b"x" * 1024 + b"\r\n0\r\n\r\n",
    "/redir": b"HTTP/1.1 303 See Other\r\nLocation: /len\r\nContent-Length: 0\r\n\r\n",
    "/loop": b"HTTP/1.1 302 Found\r\nLocation: loop\r\nContent-Length: 0\r\n\r\n",
    "/slowloop": b"HTTP/1.1 302 Found\r\nLocation: slowloop\r\nContent-Length: 0\r\n\r\n",
    "/garbage": b"SSH-2.0-OpenSSH\r\n\r\n",
    "/short": b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this",
    "/json": b'HTTP/1.1 202 Accepted\r\nContent-Length: 8\r\n\r\n{"a": 1}',
    "/notjson": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{x}",
    "/204": b"HTTP/1.1 204 No Content\r\n\r\n",
}


async def _handle(reader, writer):
    try:
        line = await reader.readline()
        method, path, _ = line.decode().split(" ", 2)
        headers = {}
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b""):
                break
            k, v = h.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        body = await reader.readexactly(n) if n else b""
        SEEN.append((method, path, headers, body))
        if path == "/slowloop":
            try:
                await asyncio.sleep(0.2)  # each hop is quick, four of them are not
            except asyncio.CancelledError:
                return
        if path == "/hang":
            try:
                await asyncio.Event().wait()  # never answers
            except asyncio.CancelledError:
                return
        writer.write(REPLIES.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


async def _server():
    # The unix port's sockets have no getsockname(), so pick a free port by trying.
    for _ in range(50):
        port = 20000 + getrandbits(15) % 40000
        try:
            srv = await asyncio.start_server(_handle, "127.0.0.1", port)
            return srv, "http://127.0.0.1:%d" % port
        except OSError:
            pass
    raise OSError("no free port")


async def _fails(coro, words):
    try:
        await coro
    except HTTPError as e:
        assert words in str(e), str(e)
        return
    raise AssertionError("no HTTPError (%s)" % words)


def test_parse_url():
    assert httpclient.parse_url("http://a.b/x?y=1") == ("http", "a.b", 80, "/x?y=1")
    assert httpclient.parse_url("https://a.b:8443") == ("https", "a.b", 8443, "/")
    assert httpclient.parse_url("http://h?q") == ("http", "h", 80, "/?q")
    for bad in ("ftp://x/", "http://", "http://h:99999/", "http://u:p@h/", "http://h:x/"):
        try:
            httpclient.parse_url(bad)
        except HTTPError:
            continue
        raise AssertionError("accepted " + bad)


def test_join_url():
    assert httpclient.join_url("http://h:81/a/b", "/c") == "http://h:81/c"
    assert httpclient.join_url("http://h/a/b?q", "c") == "http://h/a/c"
    assert httpclient.join_url("https://h/a", "//o/p") == "https://o/p"
    assert httpclient.join_url("http://h/a", "https://x/y") == "https://x/y"


async def test_bodies():
    srv, base = await _server()
    try:
        r = await httpclient.request("GET", base + "/len")
        assert (r.status, r.body, r.headers["x-a"]) == (200, b"hello", "1, 2")
        r = await httpclient.request("GET", base + "/chunked")
        assert r.body == b"Wikipedia in \r\n\r\nchunks.", r.body
        r = await httpclient.request("GET", base + "/close")
        assert r.body == b"to the end"
        r = await httpclient.request("GET", base + "/204")
        assert (r.status, r.body) == (204, b"")
        r = await httpclient.request("GET", base + "/nothing")
        assert r.status == 404
    finally:
        srv.close()


async def test_post_json_and_headers():
    srv, base = await _server()
    try:
        del SEEN[:]
        r = await httpclient.request("POST", base + "/json", headers=[("Device-Id", "aa:bb")], json={"k": "v"})
        assert r.status == 202 and r.json() == {"a": 1}
        method, path, headers, body = SEEN[-1]
        assert method == "POST" and path == "/json"
        assert headers["device-id"] == "aa:bb" and headers["content-type"] == "application/json"
        assert headers["host"] == base[7:]
        assert body == b'{"k": "v"}' or body == b'{"k":"v"}'
        r = await httpclient.request("GET", base + "/notjson")
        try:
            r.json()
        except HTTPError as e:
            assert "not JSON" in str(e)
        else:
            raise AssertionError("parsed {x}")
    finally:
        srv.close()


async def test_body_guard():
    srv, base = await _server()
    try:
        await _fails(httpclient.request("GET", base + "/big", max_body=4096), "larger than")
        await _fails(httpclient.request("GET", base + "/bigchunk", max_body=1500), "larger than")
        r = await httpclient.request("GET", base + "/bigchunk", max_body=2048)
        assert len(r.body) == 2048
    finally:
        srv.close()


async def test_redirects():
    srv, base = await _server()
    try:
        del SEEN[:]
        r = await httpclient.request("POST", base + "/redir", json={"x": 1})
        assert r.status == 200 and r.body == b"hello" and r.url == base + "/len"
        assert SEEN[-1][0] == "GET" and SEEN[-1][3] == b""
        await _fails(httpclient.request("GET", base + "/loop", max_redirects=2), "more than 2 redirects")
        await _fails(httpclient.request("GET", base + "/redir", max_redirects=0), "more than 0 redirects")
    finally:
        srv.close()


async def test_errors_are_clear():
    srv, base = await _server()
    try:
        await _fails(httpclient.request("GET", base + "/hang", timeout_ms=300), "timed out")
        # The deadline covers the redirects too, not each hop on its own.
        await _fails(httpclient.request("GET", base + "/slowloop", timeout_ms=500, max_redirects=3), "timed out")
        await _fails(httpclient.request("GET", base + "/garbage"), "not an HTTP reply")
        await _fails(httpclient.request("GET", base + "/short"), "failed")
    finally:
        srv.close()
    # The server is gone: connection refused is an HTTPError too.
    await asyncio.sleep(0.05)
    await _fails(httpclient.request("GET", base + "/len", timeout_ms=2000), "connect")


def test_pem_ca_files_become_der_certificates():
    # MicroPython's mbedTLS takes CA certificates as DER only: PEM files, bundles
    # included, are split and decoded (each certificate is then added).
    import tlsctx

    der = b"\x30\x03\x02\x01\x01"
    import binascii

    pem = b"-----BEGIN CERTIFICATE-----\n" + binascii.b2a_base64(der).strip() + b"\n-----END CERTIFICATE-----\n"
    assert tlsctx.der_certificates(der) == [der]
    assert tlsctx.der_certificates(pem) == [der]
    assert tlsctx.der_certificates(pem.decode() + pem.decode()) == [der, der]
    try:
        tlsctx.der_certificates(b"-----BEGIN NOTHING")
    except tlsctx.TLSError as e:
        assert "no PEM certificate" in str(e)
    else:
        assert False
