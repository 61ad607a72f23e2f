# Provisioning portal (docs/protocol.md §9.2): an open AP "Xiaozhi-XXXX", captive DNS and
# a small asyncio HTTP server with one page and a JSON API in the spirit of
# the reference's esp-wifi-connect:
#   GET  /                      the page
#   GET  /scan                  {"support_5g": false, "aps": [{"ssid","rssi","authmode"}]}
#   POST /submit                {"ssid","password"} -> test-join, then save -> {"success", "error"?}
#   GET  /saved/list            ["ssid", ...]
#   GET  /saved/delete?index=N  /saved/set_default?index=N
#   GET  /advanced/config       {"ota_url","ws_url","ws_token_set","protocol_version","audio_format",
#                                "server_managed_urls","language"}   (the token itself is never sent;
#                                language only picks the page's language)
#   POST /advanced/config       same keys (+ "ws_token") -> {"success", "error"?}
#        (also as POST /advanced/submit, the reference's name for it)
#   POST /exit                  leave the portal
# Every reply is Connection: close; requests over the size limits get 413.
try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio

try:
    import json
except ImportError:  # pragma: no cover
    import ujson as json

from firmware import log
from firmware.captive_dns import CaptiveDNS
from firmware.config import MAX_NETWORKS, ConfigError
from firmware.config_schema import check_network

MAX_BODY = 1024  # as the reference portal
MAX_HEAD = 2048  # request line + headers
READ_TIMEOUT_S = 10
AP_IP = "192.168.4.1"
_TAG = "portal"
_ADVANCED = ("ota_url", "ws_url", "ws_token", "protocol_version", "audio_format", "server_managed_urls")
# Captive-portal probes of Android, iOS/macOS and Windows: send them to the page.
_PROBES = ("/generate_204", "/gen_204", "/hotspot-detect.html", "/library/test/success.html",
           "/ncsi.txt", "/connecttest.txt", "/redirect", "/canonical.html", "/success.txt")
_REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 413: "Payload Too Large"}


def ap_ssid(mac):
    """'Xiaozhi-XXXX' from the last two MAC bytes, upper-case hex (docs/protocol.md §9.2)."""
    return "Xiaozhi-%02X%02X" % (mac[-2], mac[-1])


def _page():
    """The page's bytes, loaded for this request and not kept: the device goes
    on from the portal to voice sessions without a reboot, and those need the
    10 KB more than a second visit to the page needs the speed."""
    import sys

    import firmware
    from firmware.portal_page import PAGE

    del sys.modules["firmware.portal_page"]
    try:
        del firmware.portal_page  # the package holds its submodules too
    except AttributeError:
        pass
    return PAGE


class _TooLarge(Exception):
    pass


def _query(path):
    out = {}
    if "?" in path:
        for part in path.split("?", 1)[1].split("&"):
            k, _, v = part.partition("=")
            out[k] = v
    return out


def _index(q, n):
    try:
        i = int(q.get("index", ""))
    except ValueError:
        return None
    return i if 0 <= i < n else None


class Portal:
    def __init__(self, cfg, hal, wifi, host="0.0.0.0", port=80, dns_port=53):
        self.cfg = cfg
        self.hal = hal
        self.wifi = wifi
        self.host = host
        self.port = port
        self.dns_port = dns_port
        self.done = asyncio.Event()
        ap = getattr(hal, "ap", None)
        self.ssid = ap_ssid(ap.config("mac") if ap is not None else hal.mac())

    # -- lifecycle -------------------------------------------------------------
    async def run(self):
        """Bring up the AP, serve until POST /exit, then take it all down."""
        ap = getattr(self.hal, "ap", None)
        self.wifi.wlan.active(True)  # AP+STA: the station scans and test-joins
        if ap is not None:
            ap.active(True)  # before config(): the esp32 quickref's order
            ap.config(essid=self.ssid, security=0)  # open AP, like the reference
        srv = await asyncio.start_server(self._conn, self.host, self.port)
        dns = None
        if self.dns_port:
            dns = asyncio.create_task(CaptiveDNS(AP_IP, self.host, self.dns_port).open().run())
        log.info(_TAG, "join Wi-Fi %s and open http://%s/ (serving on %s:%d)"
                 % (self.ssid, AP_IP, self.host, self.port))
        log.event("portal", {"ssid": self.ssid, "host": self.host, "port": self.port})
        try:
            await self.done.wait()
            await asyncio.sleep(0.1)  # let the /exit reply reach the browser
        finally:
            # close()/cancel() only schedule the sockets' close; wait for it, or
            # a portal restarted at once (Done with no network saved) finds its
            # port still bound: EADDRINUSE.
            srv.close()
            await srv.wait_closed()
            if dns:
                dns.cancel()
                try:
                    await dns
                except asyncio.CancelledError:
                    pass
            if ap is not None:
                ap.active(False)
            log.event("portal_exit", {"saved": len(self.cfg.get("wifi"))})

    # -- HTTP ------------------------------------------------------------------
    async def _read_request(self, reader):
        line = await reader.readline()
        size = len(line)
        parts = line.decode().split()
        if len(parts) != 3:
            raise ValueError("bad request line")
        length = 0
        while True:
            h = await reader.readline()
            size += len(h)
            if size > MAX_HEAD:
                raise _TooLarge()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode().partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        if length > MAX_BODY or length < 0:
            raise _TooLarge()
        body = await reader.readexactly(length) if length else b""
        return parts[0], parts[1], body

    async def _conn(self, reader, writer):
        try:
            try:
                method, path, body = await asyncio.wait_for(self._read_request(reader), READ_TIMEOUT_S)
                status, ctype, out, extra = await self._route(method, path, body)
            except _TooLarge:
                status, ctype, out, extra = self._json(413, {"success": False, "error": "request too large"})
            except asyncio.TimeoutError:
                status, ctype, out, extra = self._json(408, {"success": False, "error": "request timeout"})
            except (ValueError, EOFError, UnicodeError):
                status, ctype, out, extra = self._json(400, {"success": False, "error": "bad request"})
            head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n" % (
                status, _REASONS.get(status, "Error"), ctype, len(out))
            writer.write((head + extra + "\r\n").encode())
            writer.write(out)
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    def _json(self, status, obj):
        return status, "application/json", json.dumps(obj).encode(), "Cache-Control: no-store\r\n"

    async def _route(self, method, path, body):
        p = path.split("?", 1)[0]
        q = _query(path)
        if method == "GET":
            if p in ("/", "/index.html"):
                return 200, "text/html; charset=utf-8", _page(), ""
            if p == "/scan":
                return self._json(200, self._scan())
            if p == "/saved/list":
                return self._json(200, [n["ssid"] for n in self.cfg.get("wifi")])
            if p == "/saved/delete":
                return self._saved_edit(q, False)
            if p == "/saved/set_default":
                return self._saved_edit(q, True)
            if p == "/advanced/config":
                return self._json(200, self._advanced())
            # Captive-portal probes and any other page: to the portal.
            return 302, "text/plain", b"", "Location: http://%s/\r\n" % AP_IP
        if method != "POST":
            return self._json(405, {"success": False, "error": "method not allowed"})
        if p in ("/submit", "/advanced/config", "/advanced/submit"):
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                return self._json(400, {"success": False, "error": "body is not JSON"})
            if not isinstance(req, dict):
                return self._json(400, {"success": False, "error": "body is not a JSON object"})
            if p == "/submit":
                return await self._submit(req)
            return self._advanced_set(req)
        if p == "/exit":
            log.info(_TAG, "exit requested")
            self.done.set()
            return self._json(200, {"success": True})
        return self._json(404, {"success": False, "error": "no such endpoint"})

    # -- endpoints ---------------------------------------------------------------
    def _scan(self):
        best = {}
        try:
            aps = self.wifi.wlan.scan()
        except OSError as e:
            log.warn(_TAG, "scan failed: %s" % e)
            aps = []
        for ap in aps:
            try:
                ssid = ap[0].decode()
            except UnicodeError:
                continue
            if ssid and (ssid not in best or ap[3] > best[ssid]["rssi"]):
                best[ssid] = {"ssid": ssid, "rssi": ap[3], "authmode": ap[4]}
        aps = sorted(best.values(), key=lambda a: -a["rssi"])
        return {"support_5g": False, "aps": aps}

    async def _submit(self, req):
        ssid = req.get("ssid")
        pw = req.get("password", "")
        try:
            check_network({"ssid": ssid, "password": pw})  # before a test-join, not after
        except ConfigError as e:
            return self._json(400, {"success": False, "error": str(e)})
        log.info(_TAG, "testing %s" % ssid)
        ok, why = await self.wifi.join(ssid, pw)
        if not ok:
            log.warn(_TAG, "test join of %s failed: %s" % (ssid, why))
            return self._json(200, {"success": False, "error": "cannot join %s: %s" % (ssid, why)})
        nets = [n for n in self.cfg.get("wifi") if n["ssid"] != ssid]
        nets.insert(0, {"ssid": ssid, "password": pw})  # newest first, tried first
        try:
            self.cfg.set("wifi", nets[:MAX_NETWORKS])
            self.cfg.save()
        except ConfigError as e:
            return self._json(200, {"success": False, "error": str(e)})
        log.info(_TAG, "saved network %s" % ssid)
        log.event("portal_saved", {"ssid": ssid})
        return self._json(200, {"success": True})

    def _saved_edit(self, q, make_default):
        nets = list(self.cfg.get("wifi"))
        i = _index(q, len(nets))
        if i is None:
            return self._json(400, {"success": False, "error": "index must be 0..%d" % (len(nets) - 1)})
        n = nets.pop(i)
        if make_default:
            nets.insert(0, n)
        self.cfg.set("wifi", nets)
        try:
            self.cfg.save()
        except ConfigError as e:
            return self._json(200, {"success": False, "error": str(e)})
        return self._json(200, {"success": True})

    def _advanced(self):
        c = self.cfg
        return {
            "ota_url": c.get("ota_url"),
            "ws_url": c.get("ws_url"),
            "ws_token_set": bool(c.get("ws_token")),
            "protocol_version": c.get("protocol_version"),
            "audio_format": c.get("audio_format"),
            "server_managed_urls": c.get("server_managed_urls"),
            "language": c.get("language"),
        }

    def _advanced_set(self, req):
        vals = {}
        for k in req:
            if k not in _ADVANCED:
                return self._json(400, {"success": False, "error": "unknown setting '%s'" % k})
            vals[k] = req[k]
        if vals.get("ws_token") == "":
            del vals["ws_token"]  # an empty field keeps the saved token
        try:
            self.cfg.update(vals)
            self.cfg.save()
        except ConfigError as e:
            return self._json(400, {"success": False, "error": str(e)})
        log.info(_TAG, "server settings saved: %s" % ", ".join(sorted(k for k in vals if k != "ws_token")))
        return self._json(200, {"success": True})
