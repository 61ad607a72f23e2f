# A scriptable stand-in for network.WLAN (station and access point) so the
# Wi-Fi manager, OTA and the portal run unchanged in the simulator. It keeps
# the esp32 port's status codes and its asynchronous join: connect() returns at
# once and status() settles after join_ms of virtual time (firmware.clock).
#
# sim.json keys (all optional; no "networks" key means no Wi-Fi at all):
#   "networks": [{"ssid": "home", "password": "pw", "rssi": -50, "channel": 6}]
#   "wifi_join_ms": 1500          time a join takes
#   "wifi_fail": [201, 202]       status codes for the next joins, then normal
#   "portal": true                force the provisioning portal at boot
#   "portal_host", "portal_port", "dns_port"   where the portal listens
# Control lines (the sim HAL forwards "wifi <rest>" to control(rest)):
#   down | up | fail <code> [n]
from firmware import clock, log

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204

_TAG = "simwifi"


class Air:
    """What the radio can see: the APs, whether they are reachable, scripts."""

    def __init__(self, networks, join_ms=1500, fail=None):
        self.networks = networks
        self.join_ms = join_ms
        self.fail = list(fail or ())
        self.down = False

    def find(self, ssid):
        if self.down:
            return None
        for n in self.networks:
            if n.get("ssid") == ssid:
                return n
        return None


class SimWLAN:
    IF_STA = 0
    IF_AP = 1
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2
    STAT_IDLE = STAT_IDLE
    STAT_CONNECTING = STAT_CONNECTING
    STAT_GOT_IP = STAT_GOT_IP
    STAT_BEACON_TIMEOUT = STAT_BEACON_TIMEOUT
    STAT_NO_AP_FOUND = STAT_NO_AP_FOUND
    STAT_WRONG_PASSWORD = STAT_WRONG_PASSWORD
    STAT_ASSOC_FAIL = STAT_ASSOC_FAIL
    STAT_HANDSHAKE_TIMEOUT = STAT_HANDSHAKE_TIMEOUT

    def __init__(self, opts):
        """opts: the sim.json settings (keys above)."""
        self.air = _air(opts)
        self.mac = _mac(opts)
        self._active = False
        self._status = STAT_IDLE
        self._net = None  # the AP joined or being joined
        self._settle_at = 0
        self._result = STAT_IDLE
        self._stale = 0  # last failure reason, reported until the next GOT_IP
        self.pm = self.PM_PERFORMANCE
        self.joins = []  # (ssid, result) for tests

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self.disconnect()
        return None

    def connect(self, ssid=None, key=None, bssid=None):
        if not self._active:
            raise OSError("Wifi Not Started")  # what the esp32 port raises
        net = self.air.find(ssid)
        if self.air.fail:
            result = self.air.fail.pop(0)
        elif net is None:
            result = STAT_NO_AP_FOUND
        elif net.get("password", "") != (key or ""):
            result = STAT_WRONG_PASSWORD
        else:
            result = STAT_GOT_IP
        self._net = net if result == STAT_GOT_IP else None
        self._result = result
        # Like the esp32 port: the last disconnect reason is cleared only by
        # GOT_IP, and status() reports it ahead of "connecting" meanwhile.
        self._status = self._stale or STAT_CONNECTING
        self._settle_at = clock.now_ms() + self.air.join_ms
        self.joins.append((ssid, result))

    def disconnect(self):
        if self._status not in (STAT_IDLE, STAT_CONNECTING, STAT_GOT_IP):
            self._stale = self._status
        self._status = STAT_IDLE
        self._settle_at = 0
        self._net = None

    def _settle(self):
        if self._settle_at and clock.now_ms() >= self._settle_at:
            self._settle_at = 0
            self._status = self._result
            if self._result == STAT_GOT_IP:
                self._stale = 0

    def status(self, param=None):
        self._settle()
        if param == "rssi":
            return self._net.get("rssi", -50) if self.isconnected() else 0
        if param is not None:
            raise ValueError("unknown status param")
        return self._status

    def isconnected(self):
        self._settle()
        return self._status == STAT_GOT_IP

    def scan(self):
        if not self._active:
            raise OSError("Wifi Not Started")
        if self.air.down:
            return []
        out = []
        for i, n in enumerate(self.air.networks):
            authmode = 3 if n.get("password") else 0  # WPA2_PSK / OPEN
            out.append((n["ssid"].encode(), bytes((2, 0, 0, 0, 0, i + 1)), n.get("channel", 6),
                        n.get("rssi", -50), authmode, False))
        return out

    def config(self, *args, **kw):
        if "pm" in kw:
            self.pm = kw["pm"]
            return None
        if kw:
            return None  # txpower, reconnects, hostname: accepted, no effect here
        key = args[0] if args else None
        if key in ("ssid", "essid"):
            return self._net["ssid"] if self.isconnected() else ""
        if key == "mac":
            return self.mac
        if key == "pm":
            return self.pm
        if key == "channel":
            return self._net.get("channel", 6) if self.isconnected() else 0
        raise ValueError("unknown config param")

    def ifconfig(self):
        if self.isconnected():
            return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def control(self, line):
        """Scripted events from the simulator's stdin: 'down', 'up', 'fail CODE [N]'."""
        parts = line.split()
        if not parts:
            return
        cmd = parts[0]
        if cmd == "down":
            self.air.down = True
            if self.isconnected() or self._settle_at:
                self._settle_at = 0
                self._status = STAT_BEACON_TIMEOUT
                self._net = None
            log.info(_TAG, "AP gone")
        elif cmd == "up":
            self.air.down = False
            log.info(_TAG, "AP back")
        elif cmd == "fail" and len(parts) in (2, 3):
            code = int(parts[1])
            self.air.fail.extend([code] * (int(parts[2]) if len(parts) == 3 else 1))
        else:
            log.warn(_TAG, "unknown wifi control %r (down | up | fail CODE [N])" % line)


class SimAP:
    """The soft-AP side: only what the portal uses."""

    def __init__(self, opts):
        """opts: the sim.json settings (keys above)."""
        self.mac = _ap_mac(_mac(opts))
        self._active = False
        self.essid = ""
        self.security = None
        # Where the portal listens in the simulator (a device uses 0.0.0.0:80 and DNS on 53).
        self.portal_addr = (opts.get("portal_host", "127.0.0.1"), opts.get("portal_port", 8080),
                            opts.get("dns_port", 0))
        self.force_portal = bool(opts.get("portal"))

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        log.event("ap", {"on": self._active, "ssid": self.essid})
        return None

    def config(self, *args, **kw):
        if "essid" in kw or "ssid" in kw:
            self.essid = kw.get("essid", kw.get("ssid"))
        if "security" in kw or "authmode" in kw:
            self.security = kw.get("security", kw.get("authmode"))
        if args:
            if args[0] in ("essid", "ssid"):
                return self.essid
            if args[0] == "mac":
                return self.mac
        return None

    def ifconfig(self):
        return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1")

    def isconnected(self):
        return self._active


def _mac(opts):
    text = opts.get("mac", "02:00:00:5a:4d:01")
    return bytes(int(x, 16) for x in text.split(":")) if isinstance(text, str) else bytes(text)


def _ap_mac(mac):
    # The chip's soft-AP MAC is the station MAC + 1.
    return bytes(mac[:5]) + bytes(((mac[5] + 1) & 0xFF,))


def _air(opts):
    nets = opts.get("networks")
    if not isinstance(nets, list) or not all(isinstance(n, dict) and n.get("ssid") for n in nets):
        raise ValueError("sim.json 'networks' must be a list of {\"ssid\": ..., \"password\": ...}")
    return Air(nets, opts.get("wifi_join_ms", 1500), opts.get("wifi_fail"))

