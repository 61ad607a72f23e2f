# Boot steps on the modelled chip: the portal's AP, PSRAM, and the clock that
# certificate checks need (issue 15 defects 2 and 7).
import asyncio
import os
import time

from firmware import clock, config, ntp, wifi
from firmware.hal import esp32 as esp32hal
from firmware.portal import Portal
from host_tests.esp32.common import hal, world

# Per run, so two runs on one machine (tests in parallel) never share the file.
_P = "/tmp/xz_esp32_boot_test_%d.json" % int.from_bytes(os.urandom(4), "big")


async def test_portal_brings_the_ap_up_before_configuring_it():
    h = hal()
    cfg = config.Config(_P)
    p = Portal(cfg, h, wifi.WifiManager(h, cfg), "127.0.0.1", 0, 0)
    task = asyncio.create_task(p.run())
    await asyncio.sleep_ms(200)
    assert h.ap.active(), "the portal's AP is not up"
    assert h.ap.config("essid") == p.ssid
    p.done.set()
    await task


def test_missing_psram_is_named_at_boot():
    # Run with a 512 KB heap: what a SPIRAM build gets on a module without PSRAM.
    from firmware.boards import bread_compact_s3 as board

    assert board.PSRAM
    assert esp32hal.check_psram(board) is False


def test_power_on_clock_is_2000_until_ntp():
    assert time.gmtime()[0] == 2000
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.wrap_socket(None, server_hostname="example.org")
    except ValueError as e:
        assert "validity starts in the future" in str(e)
    else:
        raise AssertionError("a checked TLS handshake passed with the RTC at 2000-01-01")


async def test_ntp_sets_the_clock_after_a_lost_reply():
    # The SNTP server (started by the pytest side) ignores the first query.
    cfg = config.Config(_P)
    cfg.set("ntp_host", "127.0.0.1")
    clock.speed = 20  # the retry pause is virtual time
    assert await ntp.set_clock(cfg) is True
    assert time.gmtime()[0] >= 2026
    assert world().opts["ntp_port"]
