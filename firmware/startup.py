# Boot to ready: the board and its HAL for the config (prepare), then Wi-Fi
# (or the provisioning portal), the OTA check and activation, and the settings
# the voice session needs (bring_up).
#   starting -> [wifi_configuring ->] activating -> idle
import sys

try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio

# config_schema: loaded outright, so boot's config changes do not load and drop
# it each time (firmware/resident.py drops it with the rest of boot).
from firmware import APP_NAME, VERSION, boards, config_schema, log, ntp, ota, state
from firmware.hal import load as load_hal
from firmware.hal import pressed_within

_TAG = "boot"
_LEVELS = {"debug": log.DEBUG, "info": log.INFO, "warn": log.WARN, "error": log.ERROR}


def prepare(cfg):
    """The log level, the board profile the config names and its HAL ->
    (board, hal). Off the chip a board that needs an ESP32 gives way to the
    sim board: a config reset to defaults names the real board."""
    log.level = _LEVELS[cfg.get("log_level")]
    log.info(_TAG, "%s %s, config %s" % (APP_NAME, VERSION, config_schema.redacted(cfg.data)))
    board = boards.load(cfg.get("board"))
    if board.HAL == "esp32" and sys.platform != "esp32":
        log.warn(_TAG, "board %s needs an ESP32; using the sim board on %s" % (board.NAME, sys.platform))
        board = boards.load("sim")
    if cfg.get("listen_mode") == "realtime":
        log.warn(_TAG, "realtime mode keeps the mic open while speaking; without AEC expect echo")
    return board, load_hal(board)


def uuid4(rand16):
    """A lower-case UUID v4 string from 16 random bytes (the Client-Id)."""
    b = bytearray(rand16)
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = "".join("%02x" % x for x in b)
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


async def _portal_forced(hal):
    """A press of the button in the first seconds after boot (the board's
    PORTAL_WINDOW_MS; holding BOOT *through* reset would start the ROM
    bootloader instead), or the simulator's --portal."""
    window = getattr(hal.board, "PORTAL_WINDOW_MS", 0)
    if hal.button.pressed():
        held = True
    elif window:
        log.info(_TAG, "press the button within %d s for Wi-Fi setup" % (window // 1000))
        hal.led(True)
        held = await pressed_within(hal, window)
        hal.led(False)
    else:
        held = False
    if held:
        log.info(_TAG, "button pressed at boot: provisioning portal")
        return True
    return bool(getattr(hal.ap, "force_portal", False))


async def _portal(cfg, hal, wifi):
    from firmware.portal import Portal

    host, port, dns_port = getattr(hal.ap, "portal_addr", ("0.0.0.0", 80, 53))
    await Portal(cfg, hal, wifi, host, port, dns_port).run()


async def join_network(cfg, hal, machine, voice=None):
    """Join a saved network, or run the portal until one works. -> WifiManager,
    or None on a HAL without Wi-Fi (the simulator without 'networks')."""
    if getattr(hal, "wlan", None) is None:
        return None
    from firmware.wifi import WifiManager  # here: a HAL without Wi-Fi never loads it

    wifi = WifiManager(hal, cfg)
    need_portal = await _portal_forced(hal)
    if not cfg.get("wifi"):
        log.info(_TAG, "no saved Wi-Fi network: provisioning portal")
        need_portal = True
    while True:
        if not need_portal:
            if await wifi.connect():
                return wifi
            log.warn(_TAG, "could not join a saved network (%s); provisioning portal" % wifi.last_error)
            if voice is not None:
                voice.failed("wifi", "No Wi-Fi")
        machine.to(state.WIFI_CONFIGURING)
        await _portal(cfg, hal, wifi)
        need_portal = not cfg.get("wifi")


async def bring_up(cfg, hal, machine, voice=None):
    """-> {"ws_url", "ws_token", "protocol_version", "source", "wifi"} with
    wifi the WifiManager (for supervise()/set_power_save()) or None. voice
    (firmware/voice.py) shows and says what goes wrong, and the activation code."""
    if not cfg.get("client_id"):
        # Client-Id: a UUID generated once and kept (docs/protocol.md §1.2).
        cfg.set("client_id", uuid4(hal.random_bytes(16)))
        try:
            cfg.save()
        except ValueError as e:
            log.error(_TAG, "cannot keep the new client id: %s" % e)
    machine.to(state.STARTING)
    wifi = await join_network(cfg, hal, machine, voice)
    if wifi:
        await ntp.bring_up(cfg)  # before the first checked TLS connection (OTA, server)
    if ntp.checked_tls(cfg) and not cfg.get("ca_file"):
        log.error(_TAG, "tls_verify is on but ca_file is empty, so https/wss connections will be refused: "
                        "put your server's CA certificate (PEM) on the device and set ca_file")
    machine.to(state.ACTIVATING)
    o = None
    if cfg.get("ota_url"):
        o = ota.Ota(cfg, hal, net=wifi.info if wifi else None, voice=voice)
        if await o.run() or o.skipped:
            o = None  # checked, or the user chose the stored settings: no retries behind their back
    else:
        log.info(_TAG, "no ota_url set; using the configured server")
    out = ota.session_settings(cfg)
    if o is not None:
        # The OTA server was down: boot on the stored settings now; the
        # background task updates `out` in place once the server answers.
        asyncio.create_task(o.retry_in_background(out))
    if not out["ws_url"]:
        log.error(_TAG, "no WebSocket URL: set ws_url or ota_url (portal 'Server' section)")
    else:
        log.info(_TAG, "server %s (from %s settings)" % (out["ws_url"], out["source"]))
    if wifi:
        wifi.set_power_save(True)  # idle: save power until a session starts
    machine.to(state.IDLE)
    out["wifi"] = wifi
    from firmware import resident

    # This module included: nothing but boot needs it again. Boot's HTTPS
    # and Device-Id loaded some of the connect-time modules too, and boot
    # imports the config's checks outright.
    resident.drop(resident.BOOT_ONLY + resident.CONNECT_ONLY + resident.ON_DEMAND)
    return out
