# Wi-Fi joins through firmware/wifi.py on the modelled network.WLAN, whose
# driver retries forever unless told otherwise (issue 15 defect 4).
import os

from firmware import clock, config, wifi
from host_tests.esp32.common import hal, world

# Per run, so two runs on one machine (tests in parallel) never share the file.
_P = "/tmp/xz_esp32_wifi_test_%d.json" % int.from_bytes(os.urandom(4), "big")
NETS = [{"ssid": "home", "password": "right-one", "channel": 11}, {"ssid": "work", "password": "pw-work"}]


def _mgr():
    world().opts["networks"] = NETS
    h = hal()
    return wifi.WifiManager(h, config.Config(_P)), h


async def test_wrong_password_is_named_within_seconds():
    m, h = _mgr()
    t0 = clock.now_ms()
    ok, why = await m.join("home", "not-it")
    assert not ok and why.startswith("wrong password"), why
    assert clock.now_ms() - t0 < 8000, "took %d ms" % (clock.now_ms() - t0)
    assert h.wlan.config("reconnects") == -1, "the driver's forever-retry was not given back"


async def test_absent_ap_is_told_from_a_wrong_password():
    m, h = _mgr()
    t0 = clock.now_ms()
    ok, why = await m.join("nowhere", "x")
    assert not ok and why.startswith("AP not found"), why
    assert clock.now_ms() - t0 < 10000, "took %d ms" % (clock.now_ms() - t0)


async def test_right_password_after_a_wrong_one_joins():
    m, h = _mgr()
    assert (await m.join("home", "not-it"))[0] is False
    assert await m.join("home", "right-one") == (True, "")
    assert h.wlan.config("reconnects") == -1


async def test_switching_networks_from_a_live_link():
    # disconnect() of a live link then connect() at once can raise "Wifi
    # Internal Error" on 1.25/1.26 S3 (micropython#17661).
    m, h = _mgr()
    assert await m.join("home", "right-one") == (True, "")
    assert await m.join("work", "pw-work") == (True, "")
