# wshandshake's pure parts: the accept key, the request key, URL parsing, the
# upgrade request and the check of the server's response, run under both
# MicroPython and CPython.
import wshandshake as H
from wsclient import WSError


def test_accept_key_rfc_vector():
    # RFC 6455 §1.3 (the value CPython websockets computes too).
    assert H.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert H.accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_make_key():
    k = H.make_key(bytes(range(16)))
    assert k == "AAECAwQFBgcICQoLDA0ODw==" and len(k) == 24
    try:
        H.make_key(b"short")
    except ValueError:
        pass
    else:
        raise AssertionError("accepted a short key")


def test_parse_url_good():
    P = H.parse_url
    assert P("ws://h/") == (False, "h", 80, "/", "h")
    assert P("ws://h") == (False, "h", 80, "/", "h")
    assert P("wss://h.example") == (True, "h.example", 443, "/", "h.example")
    assert P("ws://10.0.0.2:8000/xiaozhi/v1/") == (False, "10.0.0.2", 8000, "/xiaozhi/v1/", "10.0.0.2:8000")
    assert P("ws://h:80/a") == (False, "h", 80, "/a", "h")
    assert P("wss://h:443/a?x=1&y=%20") == (True, "h", 443, "/a?x=1&y=%20", "h")
    assert P("wss://h:8443?t=1") == (True, "h", 8443, "/?t=1", "h:8443")
    assert P("ws://[::1]:9000/p") == (False, "::1", 9000, "/p", "[::1]:9000")
    assert P("ws://[::1]/p") == (False, "::1", 80, "/p", "[::1]")


def test_parse_url_bad():
    for url in (
        "http://h/",
        "ws:/h",
        "ws://",
        "ws:///path",
        "ws://h:/",
        "ws://h:abc/",
        "ws://h:0/",
        "ws://h:70000/",
        "ws://u:p@h/",
        "ws://h/#frag",
        "ws://[::1/",
        "WS://h/",
        None,
        "",
    ):
        try:
            H.parse_url(url)
        except ValueError as e:
            assert "bad WebSocket URL" in str(e), str(e)
        else:
            raise AssertionError("accepted %r" % (url,))


def _refused(fn, *args):
    try:
        fn(*args)
    except WSError as e:
        return str(e)
    raise AssertionError("accepted %r" % (args,))


def test_request_carries_headers_and_refuses_reserved_ones():
    req = H.request("/p?q=1", "h:8000", [("Device-Id", "d"), ("Client-Id", "c")], "KEY")
    assert req == (b"GET /p?q=1 HTTP/1.1\r\nHost: h:8000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Device-Id: d\r\nClient-Id: c\r\nSec-WebSocket-Key: KEY\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert H.request("/", "h", {"A": 1}, "K").count(b"A: 1\r\n") == 1
    for bad in (("Host", "x"), ("sec-websocket-key", "x"), ("A:B", "x"), ("A", "x\r\nB: y"), ("", "x")):
        assert "bad handshake header" in _refused(H.request, "/", "h", [bad], "K")


def test_check_response():
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    ok = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    H.check_response(ok.encode(), key)
    assert "refused: HTTP/1.1 403" in _refused(H.check_response, b"HTTP/1.1 403 Forbidden", key)
    assert "Sec-WebSocket-Accept" in _refused(H.check_response, ok.replace("xOo=", "xOx=").encode(), key)
    assert "extension" in _refused(H.check_response, (ok + "\r\nSec-WebSocket-Extensions: x").encode(), key)
    assert "not text" in _refused(H.check_response, b"\xff\xfe", key)
