# network.WLAN for the ESP32 model, after ports/esp32/network_wlan.c (and
# modnetwork_globals.h for the constants). What the firmware must cope with:
# - connect() returns at once; the driver then tries, and after every
#   STA_DISCONNECTED event tries again: forever by default, or
#   config(reconnects=n) more times (stored as n + 1, -1 meaning forever);
# - status() says STAT_CONNECTING while a retry is still due, the last
#   disconnect reason once none is, and that reason is cleared only by GOT_IP;
# - a wrong WPA2 password ends an attempt with reason 15
#   (4WAY_HANDSHAKE_TIMEOUT), 204 (HANDSHAKE_TIMEOUT) or 2 (AUTH_EXPIRE), an
#   absent AP with 201 (NO_AP_FOUND) after a full scan;
# - disconnect() of a live link leaves reason 8 (ASSOC_LEAVE);
# - scan() blocks the caller for the whole scan (esp_wifi_scan_start(..., 1));
# - the soft AP follows the station's channel (one radio);
# - on 1.25/1.26 S3, connect() straight after a disconnect() that stopped a
#   live link or an attempt can raise "Wifi Internal Error" (micropython#17661).
# Not from the source, kept strict on purpose: setting the AP's config before
# active(True) raises, so the firmware keeps the quickref's order.
from tools.esp32_model import mtime
from tools.esp32_model import world as _world

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY = 210
STAT_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD = 211
STAT_NO_AP_FOUND_IN_RSSI_THRESHOLD = 212
_ASSOC_LEAVE = 8
_WRONG_KEY_REASONS = (15, 204, 2)  # what successive attempts with a wrong key report
JOIN_MS = 1200  # association + 4-way handshake + DHCP
WRONG_KEY_MS = 1000  # until the handshake gives up
NO_AP_MS = 2000  # a full all-channel scan
SCAN_MS = 1500
_ERRATUM_MS = 50  # micropython#17661 window


class _Radio:
    """The one radio both interfaces share."""

    def __init__(self):
        self.sta_on = self.ap_on = False
        self.ssid = self.key = ""
        self.requested = False  # wifi_sta_connect_requested
        self.connected = False  # wifi_sta_connected
        self.reason = 0  # wifi_sta_disconn_reason
        self.conf_reconnects = 0  # 0 = forever, else reconnects + 1
        self.reconnects = 0
        self.attempt_end = None  # uptime ms when the running attempt ends
        self.attempts = 0  # attempts since connect(), picks the wrong-key reason
        self.net = None
        self.erratum_until = -1
        self.ap_essid = "ESP_XXXXXX"
        self.ap_channel = 1
        self.pm = 1  # PM_PERFORMANCE: ESP-IDF's default, the port leaves it

    def networks(self):
        return _world.world.opts.get("networks", [])

    def find(self, ssid):
        for n in self.networks():
            if n.get("ssid") == ssid:
                return n
        return None

    def start_attempt(self, now):
        self.net = self.find(self.ssid)
        if self.net is None:
            self.attempt_end = now + NO_AP_MS
        elif self.net.get("password", "") != self.key:
            self.attempt_end = now + WRONG_KEY_MS
        else:
            self.attempt_end = now + JOIN_MS

    def run(self):
        """Play the driver's events up to now."""
        now = mtime._uptime_ms()
        while self.attempt_end is not None and now >= self.attempt_end:
            end = self.attempt_end
            self.attempt_end = None
            if self.net is not None and self.net.get("password", "") == self.key:
                self.connected = True  # GOT_IP
                self.reason = 0
                self.ap_channel = self.net.get("channel", 6)
                return
            self.reason = STAT_NO_AP_FOUND if self.net is None else _WRONG_KEY_REASONS[
                self.attempts % len(_WRONG_KEY_REASONS)]
            self.attempts += 1
            if not self.requested:
                return
            if self.conf_reconnects:
                self.reconnects += 1
                if self.reconnects >= self.conf_reconnects:
                    return
            self.start_attempt(end)


_radio = _Radio()


def _mac():
    return bytes(_world.world.mac)


class WLAN:
    IF_STA = 0
    IF_AP = 1
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2

    def __init__(self, interface=IF_STA):
        if interface not in (WLAN.IF_STA, WLAN.IF_AP):
            raise ValueError("invalid WLAN interface identifier")
        self.sta = interface == WLAN.IF_STA

    def active(self, on=None):
        r = _radio
        r.run()
        if on is None:
            return r.sta_on if self.sta else r.ap_on
        if self.sta:
            r.sta_on = bool(on)
            if not on:
                r.requested = r.connected = False
                r.attempt_end = None
        else:
            r.ap_on = bool(on)
        return None

    def _need_sta(self):
        if not self.sta:
            raise OSError("STA required")

    def connect(self, ssid=None, key=None, bssid=None):
        self._need_sta()
        r = _radio
        r.run()
        if not r.sta_on:
            raise OSError("Wifi Not Started")
        now = mtime._uptime_ms()
        if now < r.erratum_until:
            raise OSError("Wifi Internal Error")
        if ssid is not None:
            r.ssid, r.key = ssid, key or ""
        r.reconnects = 0
        r.attempts = 0
        r.requested = True
        if not r.connected and r.attempt_end is None:
            r.start_attempt(now)

    def disconnect(self):
        self._need_sta()
        r = _radio
        r.run()
        busy = r.connected or r.attempt_end is not None
        r.requested = False
        if busy:
            r.connected = False
            r.attempt_end = None
            r.reason = _ASSOC_LEAVE
            r.erratum_until = mtime._uptime_ms() + _ERRATUM_MS

    def status(self, param=None):
        r = _radio
        r.run()
        if param == "rssi":
            self._need_sta()
            if not r.connected:
                raise OSError("Wifi Not Connected")
            return r.net.get("rssi", -50)
        if param is not None:
            raise ValueError("unknown status param")
        if not self.sta:
            return None
        if r.connected:
            return STAT_GOT_IP
        if r.requested and (r.conf_reconnects == 0 or r.reconnects < r.conf_reconnects):
            return STAT_CONNECTING
        return r.reason or STAT_IDLE

    def isconnected(self):
        _radio.run()
        return _radio.connected if self.sta else False

    def scan(self):
        self._need_sta()
        if not _radio.sta_on:
            raise OSError("STA must be active")
        mtime.sleep_ms(SCAN_MS)  # the port waits for the scan inside the C call
        return [(n["ssid"].encode(), b"\x24\x0a\xc4\x00\x00\x01", n.get("channel", 6), n.get("rssi", -50),
                 3, False) for n in _radio.networks()]

    def ifconfig(self, cfg=None):
        _radio.run()
        if not self.sta:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")
        if _radio.connected:
            return ("192.168.1.23", "255.255.255.0", "192.168.1.1", "192.168.1.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def config(self, *args, **kw):
        r = _radio
        r.run()
        if args and kw:
            raise TypeError("either pos or kw args are allowed")
        if kw and not self.sta and not r.ap_on:
            raise OSError("Wifi Invalid Mode")  # strict: see the header
        for k, v in kw.items():
            if k == "reconnects" and self.sta:
                r.conf_reconnects = 0 if v == -1 else v + 1
            elif k == "pm":
                r.pm = v
            elif k in ("essid", "ssid") and not self.sta:
                r.ap_essid = v
            elif k in ("security", "authmode", "password", "key", "hidden", "max_clients", "txpower",
                       "dhcp_hostname", "hostname"):
                pass
            elif k == "channel":
                r.ap_channel = v
            else:
                raise ValueError("unknown config param")
        if not args:
            return None
        k = args[0]
        if k == "mac":
            m = _mac()
            return m if self.sta else m[:5] + bytes(((m[5] + 1) & 0xFF,))
        if k == "channel":
            return r.ap_channel if (not self.sta or r.connected) else 1
        if k in ("essid", "ssid"):
            return r.ap_essid if not self.sta else r.ssid
        if k == "reconnects":
            return -1 if r.conf_reconnects == 0 else r.conf_reconnects - 1
        if k == "pm":
            return r.pm
        raise ValueError("unknown config param")
