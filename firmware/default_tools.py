# The device's default MCP tools (docs/protocol.md §8.5), plus the two places where a
# build adds its own: the board profile's tools(registry, hal) hook and an
# optional top-level user_tools.py with tools(registry, ctx).
#
# Registration order is listing order (common, board, user; user-only tools
# are listed last by the registry), kept stable for the server's prompt cache.
# The app registers them once at boot (for the tools/list entries) and again
# each time it loads the tools for a tools/call, so both hooks run at every
# load and must register the same tools each time: hardware and state made
# once go in ctx.keep (or, for a board, in its profile module).
from firmware import log
from firmware.mcp_tools import Int

_TAG = "tools"


class Context:
    """What the default tools need from the app. Any object with these attributes works.

    hal          the HAL: sysinfo() dict, optional .wlan (network.WLAN or None), .board
    cfg          firmware.config.Config: get/set/save
    player       object with set_volume(v 0..100): the playback path's gain
    reboot       callable that schedules a reboot after the current reply is sent
    version      firmware version string
    system_info  optional callable returning the OTA request body (docs/protocol.md §5.1)
    keep         a dict that outlives the tools: the app loads them for each MCP message and
                 forgets them after (docs/mcp.md "Loading"), so what a tool must remember
                 between loads (a Pin, an LED's state) goes here. Plain values and hardware
                 objects only: a function kept here would keep its module's old copy alive.
    """

    def __init__(self, hal, cfg, player, reboot, version="", system_info=None, keep=None):
        self.hal = hal
        self.cfg = cfg
        self.player = player
        self.reboot = reboot
        self.version = version
        self.system_info = system_info
        self.keep = {} if keep is None else keep


def signal_name(rssi):
    """The reference's RSSI buckets (dBm)."""
    if rssi >= -60:
        return "strong"
    if rssi >= -70:
        return "medium"
    return "weak"


def network_status(wlan):
    """{"type":"wifi","ssid","rssi","signal"} from a network.WLAN-like object; fields it cannot read are left out."""
    if wlan is None:
        # The simulator and wired boards have no WLAN to ask.
        return {"type": "none"}
    out = {"type": "wifi"}
    try:
        if hasattr(wlan, "isconnected") and not wlan.isconnected():
            out["connected"] = False
            return out
    except OSError:
        pass
    try:
        out["ssid"] = wlan.config("ssid")
    except (OSError, ValueError):
        pass
    try:
        rssi = wlan.status("rssi")
        out["rssi"] = rssi
        out["signal"] = signal_name(rssi)
    except (OSError, ValueError, TypeError):
        pass
    return out


def device_status(ctx):
    info = ctx.hal.sysinfo()
    st = {
        "audio_speaker": {"volume": ctx.cfg.get("volume")},
        "network": network_status(getattr(ctx.hal, "wlan", None)),
        "system": {"free_heap": info.get("free_heap"), "uptime_s": (info.get("uptime_ms") or 0) // 1000},
    }
    # Only boards that can measure these report them (HAL adds the keys).
    if info.get("battery") is not None:
        st["battery"] = info["battery"]
    if info.get("temperature") is not None:
        st["chip"] = {"temperature": info["temperature"]}
    return st


def wifi_facts(wlan):
    """{"ssid","rssi","channel","ip"} while joined to an AP, else None (the OTA body's board.* facts)."""
    if wlan is None:
        return None
    try:
        if not wlan.isconnected():
            return None
        net = {"ssid": wlan.config("ssid"), "rssi": wlan.status("rssi")}
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    try:
        net["channel"] = wlan.config("channel")
    except (OSError, ValueError):
        pass
    try:
        net["ip"] = wlan.ifconfig()[0]
    except (OSError, ValueError, AttributeError):
        pass
    return net


def system_info(ctx):
    """The OTA request body (docs/protocol.md §5.1): the app's builder if it gave one, else ota.request_body."""
    if ctx.system_info is not None:
        return ctx.system_info()
    from firmware import ota

    return ota.request_body(ctx.cfg, ctx.hal.sysinfo(), wifi_facts(getattr(ctx.hal, "wlan", None)))


def register_common(registry, ctx):
    @registry.tool(
        "self.get_device_status",
        "Provides the real-time information of the device, including the current status of the "
        "audio speaker, network, memory and, where the board has them, battery and chip temperature.\n"
        "Use this tool for: 1. Answering questions about current condition (e.g. what is the "
        "current volume of the audio speaker?) 2. As the first step to control the device "
        "(e.g. turn up / down the volume of the audio speaker, etc.)",
    )
    def get_device_status():
        return device_status(ctx)

    @registry.tool(
        "self.audio_speaker.set_volume",
        "Set the volume of the audio speaker. If the current volume is unknown, you must call "
        "`self.get_device_status` tool first and then call this tool.",
        Int("volume", 0, 100),
    )
    def set_volume(volume):
        # Apply first: the user hears the change even if the flash write fails.
        ctx.player.set_volume(volume)
        ctx.cfg.set("volume", volume)
        ctx.cfg.save()
        return True


def register_user_only(registry, ctx):
    @registry.tool(
        "self.get_system_info",
        "Get the system information of the device (the facts it reports to the OTA server).",
        user_only=True,
    )
    def get_system_info():
        return system_info(ctx)

    @registry.tool("self.reboot", "Reboot the device.", user_only=True)
    def reboot():
        # ctx.reboot only schedules it, so this reply still reaches the server.
        ctx.reboot()
        return True


def _hook(what, fn, *args):
    # A broken board or user hook costs its own tools, never the defaults or the session.
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001
        log.exc(_TAG, "%s failed; some of its tools may be missing" % what, e)


def register_defaults(registry, ctx):
    """Register every tool the device offers: common, board, user, then user-only."""
    register_common(registry, ctx)
    board = getattr(ctx.hal, "board", None)
    hook = getattr(board, "tools", None)
    if hook is not None:
        _hook("board tools()", hook, registry, ctx.hal)
    try:
        import user_tools
    except ImportError as e:
        # Only "there is no user_tools.py" is normal; an import error inside it is
        # reported, even one naming a module like user_tools_lib.
        if not str(e).endswith("'user_tools'"):
            log.exc(_TAG, "user_tools.py failed to import", e)
    except Exception as e:  # a bug in the user's file costs its tools, not the device
        log.exc(_TAG, "user_tools.py failed to import", e)
    else:
        fn = getattr(user_tools, "tools", None)
        if fn is None:
            log.error(_TAG, "user_tools.py has no tools(registry, ctx) function")
        else:
            _hook("user_tools.tools()", fn, registry, ctx)
    register_user_only(registry, ctx)
    log.info(_TAG, "%d MCP tools registered" % len(registry))
