"""The link under network faults: the TCP fault proxy (tools/faultproxy.py)
between the real firmware and the mock server, and the server process killed
and restarted. Short versions of `python -m tools.bench soak`'s phases.

The blackhole and idle tests use the channel's keepalive (config keys
keepalive_s / link_timeout_s): a server that never pings, a hung peer found
within the link timeout, an idle session kept as long as the server keeps it.
They run with a short keepalive (LINK), so each waits seconds for what the
defaults (10 s / 25 s: a hung peer found within 30 s, docs/protocol.md §4)
take half a minute or more to show; the mechanism is the same."""

import socket

from tools import sim
from tools.bench import soak
from tools.faultproxy import FaultProxy
from tools.mock_server.server import MockServer

# Ping every second, dead after 4 s of silence.
LINK = {"keepalive_s": 1, "link_timeout_s": 4}
# A hung peer is found link_timeout_s after its last frame, give or take a check
# interval (the defaults' "within 30 s"), plus 5 s more for a loaded test machine.
DETECT_BOUND_S = LINK["link_timeout_s"] + 5 + 5


def _proxied():
    srv = MockServer(**soak.SERVER).start_in_thread()
    proxy = FaultProxy(("127.0.0.1", srv.port)).start_in_thread()
    return srv, proxy, "ws://127.0.0.1:%d/xiaozhi/v1/" % proxy.port


def test_server_killed_mid_listen_and_mid_reply_then_next_hello_works():
    soak.Rig.outputs.clear()
    r = soak.kills(6)
    assert r["failures"] == [] and r["survived"] == r["kills"] == 6 and r["alive"], r
    assert r["median_hello_s"] is not None
    assert soak.secrets_found()["found"] == 0


def test_hung_peer_detected_within_the_link_timeout_then_a_press_opens_a_fresh_session():
    r = soak.blackhole(1, **LINK)
    assert r["failures"] == [] and r["rounds"] == 1, r
    assert r["detected_s"][0] <= DETECT_BOUND_S, r
    assert r["turn_after"] == 1


def test_idle_session_with_a_server_that_never_pings_stays_open():
    # Past four link timeouts: only our PINGs' PONGs keep the link alive.
    r = soak.idle(4 * LINK["link_timeout_s"], **LINK)
    assert r["failures"] == [] and r["survived"] and r["turn_on_same_session"], r


def test_reset_mid_reply_then_the_next_turn_works(tmp_path):
    srv, proxy, url = _proxied()
    rig = soak.Rig(url, label="reset")
    try:
        rig.press_until_listening()
        soak.time.sleep(soak.HOLD_S)
        rig.fw.send("release")
        rig.fw.wait_for("no reply", "rx", 30, type="tts", state="start")
        proxy.set_mode("reset")  # RST on the open connection
        assert rig.wait_link_lost(15) < 15
        proxy.set_mode("pass")
        before = len(srv.sessions)
        rig.turn()
        assert len(srv.sessions) == before + 1 and rig.alive()
    finally:
        rig.close()
        proxy.stop()
        srv.stop()


def test_refused_then_the_server_is_back(tmp_path):
    srv, proxy, url = _proxied()
    rig = soak.Rig(url, label="refuse")
    try:
        proxy.set_mode("refuse")
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", proxy.port)) != 0  # really refused
        rig.fw.send("press")
        err = rig.fw.wait_for("no error", "error", 30)
        assert err["d"].get("reason")
        rig.fw.send("release")
        proxy.set_mode("pass")
        soak.time.sleep(1.0)
        ok = False
        for _ in range(10):  # the device may still be backing off
            try:
                rig.turn(timeout=10)
                ok = True
                break
            except sim.SimError:
                rig.fw.send("release")
                soak.time.sleep(1.0)
        assert ok and rig.alive()
    finally:
        rig.close()
        proxy.stop()
        srv.stop()


def test_slow_link_still_completes_a_turn(tmp_path):
    srv, proxy, url = _proxied()
    rig = soak.Rig(url, label="slow")
    try:
        proxy.set_mode("slow", latency_ms=30, rate=200000)
        play = rig.turn(timeout=60)
        assert play["d"]["frames"] > 0
    finally:
        rig.close()
        proxy.stop()
        srv.stop()


def test_config_save_cut_at_random_points_always_boots_valid():
    r = soak.cuts(10, seed=5)
    assert r["failures"] == [] and r["valid_boots"] == 10, r
    # The control: the cuts really landed inside saves (a temp file was left).
    assert r["tmp_left_behind"] > 0, r


def test_peer_hung_after_listen_stop_detected_within_the_link_timeout(tmp_path):
    # The case: a server that never pings goes silent (no data, no
    # FIN) just as the device sends listen stop and waits for the reply.
    srv, proxy, url = _proxied()
    rig = soak.Rig(url, label="hung", **LINK)
    try:
        rig.turn()
        rig.press_until_listening()
        soak.time.sleep(soak.HOLD_S)
        proxy.set_mode("blackhole")
        rig.fw.send("release")
        assert rig.wait_link_lost(60) <= DETECT_BOUND_S
        proxy.set_mode("pass")
        before = len(srv.sessions)
        rig.turn()
        assert len(srv.sessions) == before + 1  # the press went to a fresh session, not the dead one
    finally:
        rig.close()
        proxy.stop()
        srv.stop()


def test_slow_llm_silent_past_the_link_timeout_is_not_a_dead_link(tmp_path):
    # The server says nothing for twice the link timeout while its LLM thinks,
    # but answers our PINGs.
    srv = MockServer(think_ms=2000 * LINK["link_timeout_s"], **soak.SERVER).start_in_thread()
    rig = soak.Rig(srv.url, label="slow-llm", **LINK)
    try:
        play = rig.turn(timeout=60)  # fails on any closed/error event on the way
        assert play["d"]["frames"] > 0 and len(srv.sessions) == 1
    finally:
        rig.close()
        srv.stop()
