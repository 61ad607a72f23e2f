# default_tools + boards.lamp: the device's tools through the MCP server, with
# fake HAL/player objects. Runs under micropython and CPython.

import json
import os
import sys

from firmware import config
from firmware.boards import lamp
from firmware.default_tools import (
    Context,
    network_status,
    register_defaults,
    signal_name,
    wifi_facts,
)
from firmware.mcp import McpServer
from firmware.mcp_tools import Int, Registry

# Per run, so two runs on one machine (MicroPython and CPython, in parallel) never share the files.
_RUN = int.from_bytes(os.urandom(4), "big")
_P = "/tmp/xz_mcp_defaults_cfg_%d.json" % _RUN
_LIST_ALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"withUserTools": True}}


class FakeWlan:
    def __init__(self, rssi=-55, ssid="home", connected=True):
        self.rssi = rssi
        self.ssid = ssid
        self.connected = connected

    def isconnected(self):
        return self.connected

    def status(self, what=None):
        assert what == "rssi"
        if not self.connected:
            raise OSError(1)
        return self.rssi

    def config(self, key):
        return {"ssid": self.ssid, "channel": 6}[key]

    def ifconfig(self):
        return ("192.168.1.7", "255.255.255.0", "192.168.1.1", "192.168.1.1")


class Board:
    NAME = "test-board"


class FakeHal:
    def __init__(self, wlan=None, extra=None, board=Board):
        self.wlan = wlan
        self.board = board
        self.extra = extra or {}

    def sysinfo(self):
        info = {"chip": "esp32s3", "flash_size": 8388608, "free_heap": 123456, "mac": "aa:bb:cc:dd:ee:ff",
                "board": "test-board", "uptime_ms": 61500}
        info.update(self.extra)
        return info


class FakePlayer:
    def __init__(self):
        self.volumes = []

    def set_volume(self, v):
        self.volumes.append(v)


class FakePin:
    def __init__(self):
        self.v = None

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v


def _device(hal=None, **ctx_kw):
    for s in ("", ".tmp"):
        try:
            os.remove(_P + s)
        except OSError:
            pass
    cfg = config.load(_P)
    cfg.set("client_id", "5f1c7c52-5d0f-4c1e-9d2a-3c1b2a4f6e70")
    player = FakePlayer()
    reboots = []
    ctx = Context(hal or FakeHal(FakeWlan()), cfg, player, lambda: reboots.append(1), "9.9.9", **ctx_kw)
    reg = Registry()
    register_defaults(reg, ctx)
    return McpServer(reg, "test-board", "9.9.9"), reg, cfg, player, reboots


def _call(s, name, args=None, rid=1):
    params = {"name": name}
    if args is not None:
        params["arguments"] = args
    return json.loads(s.handle_sync({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}))


def _text(reply, is_error=False):
    assert "result" in reply, reply
    assert reply["result"]["isError"] is is_error, reply
    return reply["result"]["content"][0]["text"]


def test_signal_mapping_like_the_reference():
    for rssi, want in ((-30, "strong"), (-60, "strong"), (-61, "medium"), (-70, "medium"),
                       (-71, "weak"), (-95, "weak")):
        assert signal_name(rssi) == want, (rssi, signal_name(rssi))
    assert network_status(FakeWlan(-65)) == {"type": "wifi", "ssid": "home", "rssi": -65, "signal": "medium"}
    assert network_status(FakeWlan(connected=False)) == {"type": "wifi", "connected": False}
    assert network_status(None) == {"type": "none"}
    assert wifi_facts(FakeWlan(-50)) == {"ssid": "home", "rssi": -50, "channel": 6, "ip": "192.168.1.7"}
    assert wifi_facts(FakeWlan(connected=False)) is None and wifi_facts(None) is None


def test_listing_order_and_user_only():
    s, _, _, _, _ = _device()
    page = json.loads(s.handle_sync({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
    names = [t["name"] for t in page["result"]["tools"]]
    assert names == ["self.get_device_status", "self.audio_speaker.set_volume"]
    res = json.loads(s.handle_sync(_LIST_ALL))["result"]
    assert [t["name"] for t in res["tools"]] == names + ["self.get_system_info", "self.reboot"]
    assert res["tools"][3]["annotations"] == {"audience": ["user"]}
    volume = {"type": "integer", "minimum": 0, "maximum": 100}
    want = {"type": "object", "required": ["volume"], "properties": {"volume": volume}}
    assert res["tools"][1]["inputSchema"] == want


def test_get_device_status():
    s, _, _, _, _ = _device(FakeHal(FakeWlan(-72)))
    st = json.loads(_text(_call(s, "self.get_device_status", {})))
    assert st == {"audio_speaker": {"volume": 70},
                  "network": {"type": "wifi", "ssid": "home", "rssi": -72, "signal": "weak"},
                  "system": {"free_heap": 123456, "uptime_s": 61}}, st
    # battery and chip temperature appear only on boards whose HAL reports them
    s, _, _, _, _ = _device(FakeHal(None, {"temperature": 41.5, "battery": {"level": 80, "charging": False}}))
    st = json.loads(_text(_call(s, "self.get_device_status")))
    assert st["chip"] == {"temperature": 41.5} and st["battery"] == {"level": 80, "charging": False}
    assert st["network"] == {"type": "none"}


def test_set_volume_applies_persists_and_validates():
    s, _, cfg, player, _ = _device()
    assert _text(_call(s, "self.audio_speaker.set_volume", {"volume": 25})) == "true"
    assert player.volumes == [25] and cfg.get("volume") == 25
    assert config.load(_P).get("volume") == 25  # persisted
    st = json.loads(_text(_call(s, "self.get_device_status")))
    assert st["audio_speaker"]["volume"] == 25
    for bad, words in (({"volume": 101}, ("maximum", "100")), ({"volume": -5}, ("minimum", "0")),
                       ({"volume": "50"}, ("expected integer",)), ({}, ("Missing valid argument: volume",))):
        reply = _call(s, "self.audio_speaker.set_volume", bad)
        for w in words:
            assert w in reply["error"]["message"], (w, reply)
    assert player.volumes == [25] and config.load(_P).get("volume") == 25  # nothing applied


def test_set_volume_save_failure_is_reported():
    s, _, cfg, player, _ = _device()
    cfg.path = "/nonexistent-dir/cfg.json"
    text = _text(_call(s, "self.audio_speaker.set_volume", {"volume": 30}), is_error=True)
    assert "ConfigError" in text and "could not save" in text, text
    assert player.volumes == [30]  # the user still hears it
    assert _text(_call(s, "self.get_device_status", rid=2))  # and the session goes on


def test_get_system_info_matches_the_ota_body():
    from firmware import ota

    hal = FakeHal(FakeWlan(-50))
    s, _, cfg, _, _ = _device(hal)
    info = json.loads(_text(_call(s, "self.get_system_info")))
    assert info == json.loads(json.dumps(ota.request_body(cfg, hal.sysinfo(), wifi_facts(hal.wlan))))
    assert info["mac_address"] == "aa:bb:cc:dd:ee:ff" and info["board"]["rssi"] == -50
    assert info["uuid"] == "5f1c7c52-5d0f-4c1e-9d2a-3c1b2a4f6e70" and info["minimum_free_heap_size"] == "123456"
    # an app-supplied builder wins
    s, _, _, _, _ = _device(system_info=lambda: {"version": 2, "custom": True})
    assert json.loads(_text(_call(s, "self.get_system_info"))) == {"version": 2, "custom": True}


def test_reboot_is_acknowledged_and_scheduled():
    s, _, _, _, reboots = _device()
    reply = _call(s, "self.reboot", rid="r1")
    assert reply["id"] == "r1" and _text(reply) == "true"
    assert reboots == [1]


def test_board_tools_and_a_broken_hook():
    pin = FakePin()
    pin.v = 0  # made once by the board, off (bread_compact_s3.tools)

    class LampBoard:
        NAME = "lamp-board"

        @staticmethod
        def tools(registry, hal):
            lamp.register(registry, pin)

    s, reg, _, _, _ = _device(FakeHal(None, board=LampBoard))
    assert pin.v == 0
    res = json.loads(s.handle_sync(_LIST_ALL))["result"]
    assert [t["name"] for t in res["tools"]] == [
        "self.get_device_status", "self.audio_speaker.set_volume",
        "self.lamp.get_state", "self.lamp.turn_on", "self.lamp.turn_off",
        "self.get_system_info", "self.reboot"]
    assert json.loads(_text(_call(s, "self.lamp.get_state"))) == {"power": False}
    assert _text(_call(s, "self.lamp.turn_on")) == "true" and pin.v == 1
    assert json.loads(_text(_call(s, "self.lamp.get_state"))) == {"power": True}
    # The app registers the tools again for each MCP message: a lamp left on stays on.
    s, reg, _, _, _ = _device(FakeHal(None, board=LampBoard))
    assert pin.v == 1 and json.loads(_text(_call(s, "self.lamp.get_state"))) == {"power": True}
    assert _text(_call(s, "self.lamp.turn_off")) == "true" and pin.v == 0

    class BrokenBoard:
        NAME = "broken"

        @staticmethod
        def tools(registry, hal):
            registry.add("self.ok_tool", "", lambda: 1)
            registry.add("self.bad", "", lambda v: 1, (Int("v", 5, 1),))

    s, reg, _, _, _ = _device(FakeHal(None, board=BrokenBoard))
    # the defaults (and the tools the hook added before failing) are all there
    assert reg.get("self.get_device_status") and reg.get("self.reboot") and reg.get("self.ok_tool")
    assert reg.get("self.bad") is None


class _FakeMachine:
    """Stands in for `machine` so the README's user_tools example runs on the host."""

    pins = {}

    class Pin:
        OUT = 3

        def __init__(self, n, mode=None, value=None):
            self.n = n
            _FakeMachine.pins[n] = self
            self.v = value
            self.history = []

        def value(self, v=None):
            if v is None:
                return self.v
            self.v = v
            self.history.append(v)


def test_the_breadboard_makes_its_lamp_pin_once():
    import sys

    from firmware.boards import bread_compact_s3 as board

    sys.modules["machine"] = _FakeMachine
    _FakeMachine.pins = {}
    try:
        s, _, _, _, _ = _device(FakeHal(None, board=board))
        pin = _FakeMachine.pins[board.LAMP_PIN]
        assert pin.v == 0  # off at boot: a known state
        _call(s, "self.lamp.turn_on")
        # the next MCP message loads the tools again: same pin, still on
        s, _, _, _, _ = _device(FakeHal(None, board=board))
        assert _FakeMachine.pins[board.LAMP_PIN] is pin and pin.v == 1
        assert json.loads(_text(_call(s, "self.lamp.get_state"))) == {"power": True}
    finally:
        from firmware import boards

        boards._outputs.clear()
        del sys.modules["machine"]


async def test_readme_user_tools_example():
    import sys

    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    examples = here + "/../../docs/examples"
    sys.modules["machine"] = _FakeMachine
    sys.path.insert(0, examples)
    try:
        class LedBoard:
            NAME = "led-board"
            LED_PIN = 48

        s, reg, _, _, _ = _device(FakeHal(None, board=LedBoard))
        pin = _FakeMachine.pins[48]
        res = json.loads(await s.handle(_LIST_ALL))["result"]
        assert [t["name"] for t in res["tools"]] == [
            "self.get_device_status", "self.audio_speaker.set_volume",
            "self.led.get_state", "self.led.set_power", "self.led.blink",
            "self.led.self_test", "self.get_system_info", "self.reboot"]
        assert _text(_call(s, "self.led.set_power", {"on": True})) == "true" and pin.v == 1
        assert json.loads(_text(_call(s, "self.led.get_state"))) == {"power": True}
        _call(s, "self.led.set_power", {"on": False})
        pin.history = []
        reply = json.loads(await s.handle({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                           "params": {"name": "self.led.blink", "arguments": {"times": 1}}}))
        assert _text(reply) == "blinked 1 times" and pin.history == [1, 0]
        assert "maximum" in _call(s, "self.led.blink", {"times": 11})["error"]["message"]
        assert _text(_call(s, "self.led.self_test")) == "true"
        # The app loads user_tools.py again for each MCP message (the module is
        # forgotten in between): the LED is not made again and keeps its state.
        keep = {}
        s, _, _, _, _ = _device(FakeHal(None, board=LedBoard), keep=keep)
        pin = _FakeMachine.pins[48]
        _call(s, "self.led.set_power", {"on": True})
        sys.modules.pop("user_tools", None)
        s, _, _, _, _ = _device(FakeHal(None, board=LedBoard), keep=keep)
        assert _FakeMachine.pins[48] is pin and pin.v == 1
        assert json.loads(_text(_call(s, "self.led.get_state"))) == {"power": True}
        # a board without an LED pin gets no LED tools
        s, reg, _, _, _ = _device(FakeHal(None))
        assert reg.get("self.led.get_state") is None and reg.get("self.get_device_status")
    finally:
        sys.path.remove(examples)
        del sys.modules["machine"]
        sys.modules.pop("user_tools", None)


def test_user_tools_import_failures_are_reported():
    import sys

    from firmware import log

    d = "/tmp/xz_mcp_user_tools_%d" % _RUN
    try:
        os.mkdir(d)
    except OSError:
        pass
    with open(d + "/user_tools.py", "w") as f:
        f.write("import user_tools_lib  # a helper the user forgot to copy\n")
    errors = []
    real_exc = log.exc
    log.exc = lambda tag, msg, e: errors.append((msg, str(e)))
    try:
        # No user_tools.py on the path: normal, nothing logged, the defaults are there.
        _, reg, _, _, _ = _device()
        assert errors == [] and reg.get("self.get_device_status")
        # A user_tools.py that fails to import: its error is logged, even though
        # the missing module's name starts with "user_tools".
        sys.path.insert(0, d)
        _, reg, _, _, _ = _device()
        assert len(errors) == 1 and "user_tools.py failed to import" in errors[0][0], errors
        assert "user_tools_lib" in errors[0][1], errors
        assert reg.get("self.get_device_status") and reg.get("self.reboot")
    finally:
        log.exc = real_exc
        if d in sys.path:
            sys.path.remove(d)
        sys.modules.pop("user_tools", None)
        os.remove(d + "/user_tools.py")
        os.rmdir(d)


def test_set_volume_loads_the_config_checks_only_for_the_call():
    # firmware/config.py loads its checks and its file per call (firmware/resident.py):
    # the second call loads them again, and neither leaves them resident.
    s, _, cfg, player, _ = _device()
    for rid, volume in ((1, 40), (2, 45)):
        assert _text(_call(s, "self.audio_speaker.set_volume", {"volume": volume}, rid)) == "true"
        assert [m for m in ("firmware.config_schema", "firmware.config_file") if m in sys.modules] == []
    assert player.volumes == [40, 45] and config.load(_P).get("volume") == 45
