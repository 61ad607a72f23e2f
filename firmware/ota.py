# OTA check and activation (docs/protocol.md §5): ask the OTA endpoint where to connect,
# store what it says, show an activation code when the server wants one and
# poll .../activate until the server has bound the device.
#
# Never acts on firmware.url: stock servers hand out ESP-IDF images, and a
# MicroPython firmware update is a separate, explicit path (DESIGN §3.7).
try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio

import httpclient
from backoff import Backoff
from firmware import APP_NAME, clock, log
from firmware import VERSION as APP_VERSION
from firmware.config import ConfigError
from firmware.hal import pressed_within
from firmware.identity import format_mac

# The reference retries 10 times from 10 s doubling (docs/protocol.md §5.3): 1.4 hours of
# a dead device when the OTA server is down. Here 3 checks (10 s, then 20 s
# apart, each bounded by TIMEOUT_MS) fall back to the stored settings within
# 2 minutes, and the checks go on in the background.
CHECKS = 3  # check attempts before the stored settings are used
RETRY_MS = 10000  # first retry delay; doubles after each failure
BACKGROUND_MS = 60000  # first background retry; doubles up to BACKGROUND_MAX_MS
BACKGROUND_MAX_MS = 900000
POLLS = 10  # activation POSTs per round (docs/protocol.md §5.4)
PENDING_MS = 3000  # wait after HTTP 202 (activation pending)
FAILED_MS = 10000  # wait after any other activation failure
TIMEOUT_MS = 30000  # the reference's HTTP client default
_TAG = "ota"


class OtaError(Exception):
    pass


def cause(err):
    """The one-word cause of a failed check, for the line a user reads first."""
    msg = str(err)
    if "addrinfo" in msg or "-202" in msg:  # unix port / esp32 (lwIP EAI_FAIL)
        return "DNS not resolved"
    if "ECONNREFUSED" in msg:
        return "refused"
    if "TLS" in msg or "https to" in msg:
        return "TLS"
    if msg.startswith(("HTTP 401", "HTTP 403")):
        return "auth"
    if msg.startswith("HTTP "):
        return "server error"
    if "timed out" in msg or "UNREACH" in msg or "ETIMEDOUT" in msg:
        return "unreachable"
    if "failed" in msg or "closed" in msg:
        return "connection lost"
    return "bad reply"


def _mac_str(mac):
    return mac if isinstance(mac, str) else format_mac(mac)


def request_headers(cfg, info):
    """Headers of docs/protocol.md §5.1 (info: hal.sysinfo()). Activation-Version 1: no
    eFuse serial number."""
    return [
        ("Activation-Version", "1"),
        ("Device-Id", _mac_str(info["mac"])),
        ("Client-Id", cfg.get("client_id")),
        ("User-Agent", "%s/%s" % (info.get("board", "unknown"), APP_VERSION)),
        ("Accept-Language", cfg.get("language")),
    ]


def request_body(cfg, info, net=None):
    """The system-info body of docs/protocol.md §5.1, built from what the HAL reports.
    net: {"ssid", "rssi", "channel", "ip"} while joined to an AP, else None."""
    mac = _mac_str(info["mac"])
    board = {"type": info["board"], "name": info["board"], "mac": mac}
    if net:
        for k in ("ssid", "rssi", "channel", "ip"):
            if net.get(k) is not None:
                board[k] = net[k]
    return {
        "version": 2,
        "language": cfg.get("language"),
        "flash_size": info.get("flash_size", 0),
        # A JSON string since the reference's 2025-07 change (docs/protocol.md §5.1).
        "minimum_free_heap_size": str(info.get("free_heap", 0)),
        "mac_address": mac,
        "uuid": cfg.get("client_id"),
        "chip_model_name": info.get("chip", ""),
        "application": {"name": APP_NAME, "version": APP_VERSION},
        "board": board,
    }


def activate_url(ota_url):
    """'…/ota/' -> '…/ota/activate'; a '/' is added when missing (docs/protocol.md §5.4)."""
    base = ota_url.split("?", 1)[0]
    return base + ("activate" if base.endswith("/") else "/activate")


def apply(cfg, reply):
    """Store what the reply hands out. Returns True when the config changed.
    Only str/int members are kept, as the reference does. A failed save is
    logged, not raised: the new settings still serve this boot."""
    changed = False
    st = reply.get("server_time")
    if isinstance(st, dict) and isinstance(st.get("timestamp"), (int, float)):
        tz = st.get("timezone_offset", 0)
        clock.set_time(st["timestamp"], tz if isinstance(tz, int) else 0)
    for section, key in (("websocket", "server_ws"), ("mqtt", "mqtt")):
        got = reply.get(section)
        if not isinstance(got, dict):
            continue
        merged = dict(cfg.get(key))
        for k in got:
            v = got[k]
            if type(v) in (str, int):
                merged[k] = v
        if merged != cfg.get(key):
            try:
                cfg.set(key, merged)
                changed = True
            except ConfigError as e:
                # e.g. a malformed ws URL from a misconfigured server (78/xiaozhi-esp32#585)
                log.error(_TAG, "ignoring the reply's %s: %s" % (section, e))
    fw = reply.get("firmware")
    if isinstance(fw, dict) and fw.get("url"):
        log.info(_TAG, "server offers firmware %s; not flashing (MicroPython updates are explicit)"
                 % fw.get("version", "?"))
    if changed:
        try:
            cfg.save()
        except ConfigError as e:
            log.error(_TAG, "cannot keep the reply's settings: %s" % e)
    return changed


def session_settings(cfg):
    """Where the WebSocket session goes. A URL the user set wins over the OTA
    reply unless server_managed_urls is on; the token and protocol version come
    from the same source as the URL, so a server's token never leaks to another
    host."""
    user = cfg.get("ws_url")
    srv = cfg.get("server_ws")
    if srv.get("url") and (cfg.get("server_managed_urls") or not user):
        return {
            "ws_url": srv["url"],
            "ws_token": srv.get("token", ""),
            "protocol_version": srv.get("version") or cfg.get("protocol_version"),
            "source": "server",
        }
    return {
        "ws_url": user,
        "ws_token": cfg.get("ws_token"),
        "protocol_version": cfg.get("protocol_version"),
        "source": "user",
    }


class Ota:
    def __init__(self, cfg, hal, net=None, voice=None):
        self.cfg = cfg
        self.hal = hal
        self.net = net  # callable -> network facts for the body, or None
        self.voice = voice  # firmware/voice.py: shows and reads out the code, says a failed check
        self.url = cfg.get("ota_url")
        self.skipped = False  # the user pressed the button to stop waiting

    def _http_opts(self):
        ca = None
        path = self.cfg.get("ca_file")
        if path:
            try:
                with open(path, "rb") as f:
                    ca = f.read()
            except OSError as e:
                raise OtaError("cannot read ca_file %s: %s" % (path, e))
        return {"verify": self.cfg.get("tls_verify"), "cadata": ca, "timeout_ms": TIMEOUT_MS}

    def _headers(self):
        info = self.hal.sysinfo()
        return info, request_headers(self.cfg, info)

    async def check(self):
        """One check-version POST. Returns the reply dict or raises OtaError."""
        info, headers = self._headers()
        body = request_body(self.cfg, info, self.net() if self.net else None)
        log.event("ota_check", {"url": self.url})
        try:
            r = await httpclient.request("POST", self.url, headers=headers, json=body, **self._http_opts())
        except httpclient.HTTPError as e:
            raise OtaError(str(e))
        if r.status != 200:
            raise OtaError("HTTP %d %s" % (r.status, r.reason))
        try:
            reply = r.json()
        except httpclient.HTTPError as e:
            raise OtaError(str(e))
        if not isinstance(reply, dict):
            raise OtaError("reply is not a JSON object")
        return reply

    async def activate_once(self, challenge):
        """POST …/activate. Returns the HTTP status, or 0 when not sent/failed.
        Without an eFuse serial the body is {} (docs/protocol.md §5.4)."""
        if not challenge:
            return 0  # the reference does not even send it
        _, headers = self._headers()
        try:
            r = await httpclient.request("POST", activate_url(self.url), headers=headers, json={},
                                   **self._http_opts())
        except (httpclient.HTTPError, OtaError) as e:
            log.warn(_TAG, "activate failed: %s" % e)
            return 0
        return r.status

    def _show_code(self, act):
        code = act.get("code", "")
        msg = act.get("message", "")
        # The code is meant to be seen: log line, event (simulator transcript), LED.
        log.info(_TAG, "activation code %s: %s" % (code, msg))
        log.event("activation", {"code": code, "message": msg})
        if self.voice is not None:
            self.voice.activation(code)

    async def _blink(self):
        # Slow blink while waiting for the user to enter the code on the server.
        on = False
        try:
            while True:
                on = not on
                self.hal.led(on)
                await clock.sleep_ms(500)
        except asyncio.CancelledError:
            self.hal.led(False)

    async def _activate(self, act):
        self._show_code(act)
        # With a voice its LED pattern says "activation"; the bare LED blinks here.
        blink = asyncio.create_task(self._blink()) if self.voice is None else None
        try:
            for n in range(1, POLLS + 1):
                status = await self.activate_once(act.get("challenge"))
                log.event("activate", {"round": n, "status": status})
                if status == 200:
                    log.info(_TAG, "activated")
                    return True
                wait = PENDING_MS if status == 202 else FAILED_MS
                log.info(_TAG, "activation %s, next poll in %d s"
                         % ("pending" if status == 202 else "failed (%d)" % status, wait // 1000))
                if await pressed_within(self.hal, wait):
                    log.info(_TAG, "button pressed: not waiting for activation")
                    self.skipped = True
                    return False
            return False
        finally:
            if blink is not None:
                blink.cancel()

    async def run(self):
        """Check (CHECKS attempts, RETRY_MS doubling) and activate until a
        check comes back without an activation. Returns True when the last
        check succeeded, False when the stored settings are to be used."""
        backoff = Backoff(RETRY_MS, RETRY_MS << CHECKS, jitter=0, limit=CHECKS - 1)
        while True:
            try:
                reply = await self.check()
            except OtaError as e:
                why = cause(e)
                delay = backoff.next()
                if delay is None:
                    log.error(_TAG, "OTA check failed %d times: %s (%s); using the stored settings, "
                              "retrying in the background" % (CHECKS, why, e))
                    log.event("ota", {"result": "fallback", "cause": why, "error": str(e)})
                    return False
                log.warn(_TAG, "OTA check failed: %s (%s); retry %d/%d in %d s"
                         % (why, e, backoff.attempts, CHECKS - 1, delay // 1000))
                log.event("ota_retry", {"attempt": backoff.attempts, "delay_ms": delay, "cause": why,
                                        "error": str(e)})
                if backoff.attempts == 1 and self.voice is not None:
                    self.voice.failed("ota", "No OTA server")
                if await pressed_within(self.hal, delay):
                    log.info(_TAG, "button pressed: skipping the OTA check; using stored settings")
                    self.skipped = True
                    log.event("ota", {"result": "skipped"})
                    return False
                continue
            backoff.reset()
            apply(self.cfg, reply)
            act = reply.get("activation")
            if not isinstance(act, dict) or not (act.get("code") or act.get("challenge")):
                log.event("ota", {"result": "ok", "ws": session_settings(self.cfg)["source"]})
                return True
            await self._activate(act)
            if self.skipped:
                log.event("ota", {"result": "skipped"})
                return False
            # Back to the check: the server stops sending activation once bound.

    async def retry_in_background(self, settings):
        """After a fallback: keep checking (BACKGROUND_MS doubling, jittered so
        a fleet that lost one server does not return in lockstep). On success
        store the reply and update `settings` in place, so the next connect
        uses what the server handed out. An activation code is shown, not
        waited for: the button belongs to the voice session by then."""
        backoff = Backoff(BACKGROUND_MS, BACKGROUND_MAX_MS)
        while True:
            await clock.sleep_ms(backoff.next())
            try:
                reply = await self.check()
            except OtaError as e:
                log.warn(_TAG, "background OTA check failed: %s (%s)" % (cause(e), e))
                continue
            apply(self.cfg, reply)
            settings.update(session_settings(self.cfg))
            act = reply.get("activation")
            if isinstance(act, dict) and act.get("code"):
                self._show_code(act)
            log.info(_TAG, "OTA server is back; settings stored")
            log.event("ota", {"result": "ok", "ws": settings["source"], "background": True})
            return
