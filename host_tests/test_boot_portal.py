"""The provisioning portal's JSON API and captive DNS, served by the firmware
under micropython (no saved network -> portal), driven over real sockets."""

import json
import socket
import struct
import urllib.error
import urllib.request

import pytest
from bootkit import device, free_port, kinds, output, wait

NETS = [
    {"ssid": "home", "password": "correct horse", "rssi": -40},
    {"ssid": "cafe", "password": "", "rssi": -70},
]
SECRET = "correct horse"


class Portal:
    def __init__(self, dev, port, dns_port):
        self.dev = dev
        self.base = f"http://127.0.0.1:{port}"
        self.dns_port = dns_port
        self.bodies: list[bytes] = []  # every reply body, checked for the password

    def call(self, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method="POST" if data is not None else "GET")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, out = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, out = e.code, e.read()
        self.bodies.append(out)
        return status, (json.loads(out) if out[:1] in (b"{", b"[") else out)


@pytest.fixture
def portal(tmp_path):
    port, dns_port = free_port(), free_port(socket.SOCK_DGRAM)
    sim = {"networks": NETS, "wifi_join_ms": 500, "clock_speed": 10, "portal_port": port, "dns_port": dns_port}
    with device(tmp_path, {"schema": 3, "board": "sim"}, sim) as dev:
        wait(dev, "portal")
        yield Portal(dev, port, dns_port)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def test_page_scan_submit_saved_exit(portal, tmp_path):
    st, page = portal.call("/")
    # Both languages' texts are in the one page; it still goes out in one small write.
    assert st == 200 and b"<form" in page and b"viewport" in page and len(page) < 12 * 1024
    st, scan = portal.call("/scan")
    assert scan["support_5g"] is False
    assert [(a["ssid"], a["authmode"] > 0) for a in scan["aps"]] == [("home", True), ("cafe", False)]

    st, r = portal.call("/submit", {"ssid": "home", "password": "wrong pw"})
    assert r == {"success": False, "error": "cannot join home: wrong password"}
    st, r = portal.call("/submit", {"ssid": "nowhere", "password": "x"})
    assert "AP not found" in r["error"]
    st, r = portal.call("/submit", {"ssid": "cafe", "password": ""})
    assert r == {"success": True}
    st, r = portal.call("/submit", {"ssid": "home", "password": SECRET})
    assert r == {"success": True}
    assert portal.call("/saved/list") == (200, ["home", "cafe"])
    assert portal.call("/saved/set_default?index=1")[1] == {"success": True}
    assert portal.call("/saved/list")[1] == ["cafe", "home"]
    assert portal.call("/saved/delete?index=0")[1] == {"success": True}
    assert portal.call("/saved/list")[1] == ["home"]
    st, r = portal.call("/saved/delete?index=7")
    assert st == 400 and "index" in r["error"]

    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["wifi"] == [{"ssid": "home", "password": SECRET}]
    assert portal.call("/exit", {}) == (200, {"success": True})
    ready = wait(portal.dev, "ready")
    assert kinds(portal.dev, "wifi")[-1]["d"]["ssid"] == "home"
    assert ready["d"]["ws_url"] == ""
    states = [e["d"]["to"] for e in kinds(portal.dev, "state")]
    assert states == ["starting", "wifi_configuring", "activating", "idle"]
    for body in portal.bodies:
        assert SECRET.encode() not in body
    assert not any(SECRET in line for line in output(portal.dev))


def test_advanced_config_validates_and_hides_token(portal, tmp_path):
    st, adv = portal.call("/advanced/config")
    assert adv == {"ota_url": "", "ws_url": "", "ws_token_set": False, "protocol_version": 1,
                   "audio_format": "pcm", "server_managed_urls": False, "language": "zh-CN"}
    st, r = portal.call("/advanced/config", {"ws_url": "http://not-ws/", "ota_url": "http://ok/"})
    assert st == 400 and "ws_url" in r["error"]
    st, r = portal.call("/advanced/config", {"protocol_version": 7})
    assert st == 400 and "protocol_version" in r["error"]
    st, r = portal.call("/advanced/config", {"wifi": []})
    assert st == 400 and "wifi" in r["error"]
    st, r = portal.call("/advanced/config", {"language": "en-US"})  # the page's switch changes only the page
    assert st == 400 and "language" in r["error"]
    st, r = portal.call("/advanced/config", {"ota_url": "http://127.0.0.1:9/xiaozhi/ota/",
                                             "ws_token": "tok-very-secret", "protocol_version": 3})
    assert r == {"success": True}
    st, adv = portal.call("/advanced/config")
    assert adv["ota_url"] == "http://127.0.0.1:9/xiaozhi/ota/" and adv["ws_token_set"] is True
    assert adv["protocol_version"] == 3
    # An empty token field keeps the saved token.
    assert portal.call("/advanced/config", {"ws_token": ""})[1] == {"success": True}
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["ws_token"] == "tok-very-secret" and saved["ota_url"] == "http://127.0.0.1:9/xiaozhi/ota/"
    for body in portal.bodies:
        assert b"tok-very-secret" not in body


def test_bad_requests_are_refused(portal):
    st, r = portal.call("/submit", raw=b"{" + b"x" * 2000 + b"}")
    assert st == 413 and r["error"] == "request too large"
    st, r = portal.call("/submit", raw=b"not json")
    assert st == 400 and "JSON" in r["error"]
    st, r = portal.call("/submit", {"ssid": "x" * 40, "password": ""})
    assert st == 400 and "32 bytes" in r["error"]
    st, r = portal.call("/submit", {"ssid": "home", "password": "p" * 70})
    assert st == 400 and "64 bytes" in r["error"]
    st, r = portal.call("/nope", {})
    assert st == 404
    # A huge header block is refused too.
    s = socket.create_connection(("127.0.0.1", int(portal.base.rsplit(":", 1)[1])), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 3000 + b"\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 413")
    s.close()


def test_captive_probe_redirects(portal):
    opener = urllib.request.build_opener(NoRedirect)
    for path in ("/generate_204", "/hotspot-detect.html", "/connecttest.txt"):
        with pytest.raises(urllib.error.HTTPError) as e:
            opener.open(portal.base + path, timeout=10)
        assert e.value.code == 302 and e.value.headers["Location"] == "http://192.168.4.1/"


def test_captive_dns_answers_every_name(portal):
    name = b"\x11connectivitycheck\x07gstatic\x03com\x00"
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(q, ("127.0.0.1", portal.dns_port))
    try:
        r, _ = s.recvfrom(512)
    except TimeoutError:
        raise AssertionError("\n".join(portal.dev.log)) from None
    s.close()
    ident, flags, qd, an = struct.unpack(">HHHH", r[:8])
    assert (ident, flags & 0x8000, qd, an) == (0x1234, 0x8000, 1, 1)
    assert r[-4:] == bytes([192, 168, 4, 1])
    ev = kinds(portal.dev, "portal")[0]["d"]
    assert ev["ssid"] == "Xiaozhi-ABCE"  # soft-AP MAC = STA MAC + 1, as on the chip


def test_the_page_is_not_kept_in_memory_after_it_is_served():
    # The device goes on from the portal to voice sessions in the same heap.
    import sys

    import firmware
    from firmware import portal

    page = portal._page()
    assert page.startswith(b"<!DOCTYPE html>")
    assert "firmware.portal_page" not in sys.modules and not hasattr(firmware, "portal_page")
