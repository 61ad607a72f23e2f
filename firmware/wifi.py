# Wi-Fi station manager: join saved networks, explain failures in words, and
# after a drop reconnect with backoff and jitter while the app rebuilds its
# sockets. Works on network.WLAN (esp32) and hal/sim_wlan.py alike.
#
# The esp32 port retries a lost AP by itself after connect(); supervise() only
# steps in (disconnect + a fresh join) when that has not worked after a backoff
# delay, so the two never fight over the radio.
try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio

from backoff import Backoff
from firmware import clock, log
from firmware.config import MAX_NETWORKS

JOIN_TIMEOUT_MS = 15000  # per network; 5 networks stay within the reference's 60 s budget
JOIN_RETRIES = 2  # driver attempts after the first while joining: failures then show in status()
POLL_MS = 100  # status polling while joining
STALE_REASON_MS = 3000  # failure codes this soon after connect() may be the last attempt's (sim)
SETTLE_MS = 200  # after stopping the driver, before connect() (micropython#17661)
WATCH_MS = 500  # link polling in supervise()
_GOT_IP = 1010
_CONNECTING = 1001
_IDLE = 1000
_TAG = "wifi"

# esp32 status() codes (ESP-IDF disconnect reasons) -> what to tell the user.
# With a wrong WPA2 password the handshake usually just times out (15, 204)
# or the authentication expires (2); 202 is the rarer explicit refusal.
_WRONG_PASSWORD = "wrong password"
_REASONS = {
    2: _WRONG_PASSWORD + " (authentication expired)",
    8: "disconnected",
    15: _WRONG_PASSWORD + " (handshake timed out)",
    200: "lost the AP (beacon timeout)",
    201: "AP not found (out of range or wrong name)",
    202: _WRONG_PASSWORD,
    203: "AP refused the association",
    204: _WRONG_PASSWORD + " (handshake timed out)",
    205: "connection failed",
    210: "AP not found with a security mode this device supports",
    211: "AP not found with the required security",
    212: "AP not found (signal too weak)",
}


def reason(status):
    """A status() code in words."""
    return _REASONS.get(status, "status %d" % status)


def _set_reconnects(w, n):
    try:
        w.config(reconnects=n)  # -1: forever (ports/esp32/network_wlan.c)
    except (ValueError, TypeError):  # a port without the setting: its retries stay as they are
        pass


class WifiManager:
    def __init__(self, hal, cfg, join_timeout_ms=JOIN_TIMEOUT_MS):
        self.wlan = hal.wlan
        self.cfg = cfg
        self.join_timeout_ms = join_timeout_ms
        self.connected = False
        self.ssid = ""
        self.last_error = ""
        self.changed = asyncio.Event()  # set on every up/down transition
        self.backoff = Backoff(1000, 60000, jitter=0.25)
        self.power_save = None

    def _set(self, up, why=""):
        if up == self.connected:
            return
        self.connected = up
        if up:
            ip = self.wlan.ifconfig()[0]
            log.info(_TAG, "connected to %s, ip %s" % (self.ssid, ip))
            log.event("wifi", {"up": True, "ssid": self.ssid, "ip": ip})
        else:
            log.warn(_TAG, "link lost: %s" % why)
            log.event("wifi", {"up": False, "reason": why})
        self.changed.set()

    def info(self):
        """Network facts for the OTA body, or None while not connected."""
        if not self.connected:
            return None
        try:
            return {
                "ssid": self.ssid,
                "rssi": self.wlan.status("rssi"),
                "channel": self.wlan.config("channel"),
                "ip": self.wlan.ifconfig()[0],
            }
        except (OSError, ValueError):
            return {"ssid": self.ssid, "ip": self.wlan.ifconfig()[0]}

    async def join(self, ssid, password, timeout_ms=None):
        """Try one network. -> (True, "") or (False, reason in words). Used for
        saved networks and for the portal's test-join before saving.

        The esp32 driver retries a failed attempt by itself, forever unless
        told otherwise, and status() says "connecting" all that time; so the
        join allows it JOIN_RETRIES more attempts, after which status() names
        the reason (wrong password within a few seconds, an absent AP a little
        later), and hands the forever-retrying back for the live link."""
        timeout_ms = timeout_ms or self.join_timeout_ms
        w = self.wlan
        w.active(True)
        if w.isconnected() or w.status() == _CONNECTING:
            w.disconnect()  # stop the driver's own retries of the previous AP
            # connect() right after a disconnect() can raise "Wifi Internal Error" (micropython#17661).
            await clock.sleep_ms(SETTLE_MS)
        _set_reconnects(w, JOIN_RETRIES)
        try:
            try:
                w.connect(ssid, password)
            except OSError:
                await clock.sleep_ms(SETTLE_MS * 5)  # once more, the driver may still be stopping
                w.connect(ssid, password)
        except OSError as e:
            _set_reconnects(w, -1)
            return False, "radio error: %s" % e
        ok, why = await self._wait_join(w, timeout_ms)
        if not ok:
            w.disconnect()
        _set_reconnects(w, -1)
        return ok, why

    async def _wait_join(self, w, timeout_ms):
        t0 = clock.now_ms()
        while clock.now_ms() - t0 < timeout_ms:
            st = w.status()
            if st == _GOT_IP:
                return True, ""
            # The simulator's WLAN reports the previous attempt's reason right
            # after connect(), as the port does without reconnects set.
            if st not in (_IDLE, _CONNECTING) and clock.now_ms() - t0 >= STALE_REASON_MS:
                return False, reason(st)
            await clock.sleep_ms(POLL_MS)
        return False, "no answer within %d s" % (timeout_ms // 1000)

    def _visible(self):
        try:
            return [ap[0].decode() for ap in self.wlan.scan()]
        except (OSError, UnicodeError):
            return None

    async def connect(self, scan=True):
        """Join the first saved network that works (at most 5, in saved order,
        those seen in a scan first). Sets `connected`; returns it. Reconnects
        pass scan=False: a scan blocks the event loop for seconds on an ESP32,
        so they try the network that last worked first instead."""
        nets = self.cfg.get("wifi")[:MAX_NETWORKS]
        if not nets:
            self.last_error = "no saved networks"
            return False
        self.wlan.active(True)
        seen = self._visible() if scan and len(nets) > 1 else [self.ssid]
        if seen:
            nets = [n for n in nets if n["ssid"] in seen] + [n for n in nets if n["ssid"] not in seen]
        for n in nets:
            log.info(_TAG, "joining %s" % n["ssid"])
            ok, why = await self.join(n["ssid"], n.get("password", ""))
            if ok:
                self.ssid = n["ssid"]
                self.last_error = ""
                self._set(True)
                return True
            self.last_error = "%s: %s" % (n["ssid"], why)
            log.warn(_TAG, "cannot join %s" % self.last_error)
            log.event("wifi_fail", {"ssid": n["ssid"], "reason": why})
        return False

    def set_power_save(self, on):
        """Modem sleep off for voice sessions (TCP connect ~1 s -> ~90 ms in the
        reference's measurements, docs/protocol.md §11, item 13), on again while idle."""
        if on == self.power_save:
            return
        w = self.wlan
        pm = getattr(w, "PM_POWERSAVE", 2) if on else getattr(w, "PM_NONE", 0)
        try:
            w.config(pm=pm)
        except (OSError, ValueError, TypeError) as e:
            log.warn(_TAG, "cannot set power save: %s" % e)
            return
        self.power_save = on
        log.event("wifi_pm", {"save": on})

    async def supervise(self):
        """Run forever: notice drops, reconnect with backoff + jitter, report
        both through `connected` / `changed`."""
        while True:
            await clock.sleep_ms(WATCH_MS)
            up = self.wlan.isconnected()
            if up:
                if not self.connected:
                    self._set(True)  # the driver came back by itself
                continue
            if self.connected:
                self._set(False, reason(self.wlan.status()))
            await self._reconnect()

    async def _reconnect(self):
        self.backoff.reset()
        while True:
            delay = self.backoff.next()
            log.info(_TAG, "reconnecting in %d ms" % delay)
            log.event("wifi_retry", {"attempt": self.backoff.attempts, "delay_ms": delay})
            await clock.sleep_ms(delay)
            if self.wlan.isconnected():
                self._set(True)
                return
            if await self.connect(scan=False):
                return
