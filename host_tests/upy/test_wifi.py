# wifi: joins, failure reasons, network order, drop + backoff reconnect, power
# save; all against hal/sim_wlan with the virtual clock running fast.
import asyncio
import os

from firmware import clock, config, wifi
from firmware.hal import sim_wlan
from host_tests.upy.checks import raises

# Per run, so two runs on one machine never share the file (nothing saves it today).
_P = "/tmp/xz_wifi_test_%d.json" % int.from_bytes(os.urandom(4), "big")
NETS = [{"ssid": "home", "password": "pw-home"}, {"ssid": "work", "password": "pw-work", "rssi": -70}]


class _Hal:
    def __init__(self, sim):
        self.wlan, self.ap = sim_wlan.SimWLAN(sim), sim_wlan.SimAP(sim)


def _mgr(saved, sim=None):
    clock.speed = 100
    hal = _Hal(sim or {"networks": NETS, "wifi_join_ms": 1000})
    c = config.Config(_P)
    c.set("wifi", saved)
    return wifi.WifiManager(hal, c), hal


async def test_join_and_reasons():
    m, hal = _mgr([])
    assert await m.join("home", "pw-home") == (True, "")
    assert await m.join("home", "nope") == (False, "wrong password")
    assert await m.join("nowhere", "x") == (False, "AP not found (out of range or wrong name)")
    hal.wlan.control("fail 204")
    assert await m.join("home", "pw-home") == (False, "wrong password (handshake timed out)")
    assert wifi.reason(203) == "AP refused the association" and wifi.reason(7) == "status 7"


async def test_stale_failure_reason_does_not_fail_the_next_join():
    # The esp32 port keeps reporting the last failure until GOT_IP; a right
    # password typed after a wrong one must still work (the sim does the same).
    m, hal = _mgr([])
    assert await m.join("home", "nope") == (False, "wrong password")
    assert hal.wlan.status() == sim_wlan.STAT_IDLE
    hal.wlan.connect("home", "pw-home")
    assert hal.wlan.status() == sim_wlan.STAT_WRONG_PASSWORD  # stale, as on the chip
    hal.wlan.disconnect()
    assert await m.join("home", "pw-home") == (True, "")


async def test_join_timeout():
    m, _ = _mgr([], {"networks": NETS, "wifi_join_ms": 60000})
    ok, why = await m.join("home", "pw-home", timeout_ms=2000)
    assert not ok and why == "no answer within 2 s"


async def test_connect_tries_saved_networks_in_order():
    saved = [{"ssid": "gone", "password": "x"}, {"ssid": "home", "password": "bad"},
             {"ssid": "work", "password": "pw-work"}]
    m, hal = _mgr(saved)
    assert await m.connect() is True and m.connected and m.ssid == "work"
    # Visible networks first, then the rest; the failures are kept as the reason.
    assert [j[0] for j in hal.wlan.joins] == ["home", "work"]
    assert m.changed.is_set()
    assert m.info()["ip"] == "192.168.1.50" and m.info()["rssi"] == -70


async def test_connect_without_networks():
    m, _ = _mgr([])
    assert await m.connect() is False and m.last_error == "no saved networks"
    m, _ = _mgr([{"ssid": "home", "password": "bad"}])
    assert await m.connect() is False and m.last_error == "home: wrong password"


async def test_drop_and_reconnect_with_backoff():
    m, hal = _mgr([NETS[0]])
    assert await m.connect()
    m.changed.clear()
    task = asyncio.create_task(m.supervise())
    hal.wlan.control("down")
    await m.changed.wait()
    m.changed.clear()
    assert not m.connected
    # While the AP is gone the backoff grows: at least two attempts.
    t0 = clock.now_ms()
    while m.backoff.attempts < 3:
        await clock.sleep_ms(100)
    assert clock.now_ms() - t0 >= 750 + 1500  # jittered 1 s + 2 s before the 3rd attempt
    hal.wlan.control("up")
    await m.changed.wait()
    assert m.connected and hal.wlan.isconnected()
    task.cancel()


def test_power_save():
    m, hal = _mgr([])
    m.set_power_save(False)
    assert hal.wlan.pm == hal.wlan.PM_NONE
    m.set_power_save(True)
    assert hal.wlan.pm == hal.wlan.PM_POWERSAVE


def test_sim_wlan_needs_named_networks():
    for opts in ({"networks": [{"password": "x"}]}, {"networks": "home"}):
        raises(lambda o=opts: sim_wlan.SimWLAN(o), "networks")


def test_sim_ap_mac_and_portal_address():
    ap = sim_wlan.SimAP({"networks": NETS, "mac": "02:11:22:33:ab:cd", "portal_port": 9001})
    assert ap.config("mac") == b"\x02\x11\x22\x33\xab\xce"  # station MAC + 1, as on the chip
    assert ap.portal_addr == ("127.0.0.1", 9001, 0) and not ap.force_portal


def test_captive_dns_answer():
    from firmware.captive_dns import answer

    q = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x01x\x03com\x00\x00\x01\x00\x01"
    r = answer(q, b"\xc0\xa8\x04\x01")
    assert r[:2] == b"\xab\xcd" and r[2] & 0x80 and r[6:8] == b"\x00\x01" and r.endswith(b"\xc0\xa8\x04\x01")
    aaaa = q[:-4] + b"\x00\x1c\x00\x01"
    assert answer(aaaa, b"\x01\x02\x03\x04")[6:8] == b"\x00\x00"  # no IPv6 answer
    assert answer(q[:15], b"\x01\x02\x03\x04") is None  # truncated
    assert answer(b"\xab\xcd\x81\x80" + q[4:], b"\x01\x02\x03\x04") is None  # a response, not a query


def test_portal_ssid():
    from firmware.portal import ap_ssid

    assert ap_ssid(b"\xcc\xba\x97\x04\x92\x95") == "Xiaozhi-9295"
