"""MCP on the real firmware: a micropython subprocess (tools/sim.py's Firmware,
board "sim") against the mock server on 127.0.0.1, which plays the stock
server's MCP client (initialize with vision -> tools/list paging on id 2 ->
tools/call ids counting from 1 again). Assertions are on the wire, from the
mock server's record of every MCP payload the device sent.
"""

import array
import json
import math
import os
import shutil
import tempfile
import time

from tools import sim
from tools.mock_server.server import MockServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIC = os.path.join(ROOT, "tools", "assets", "weather_en_16k.wav")
SPEED = 4.0
WAIT_S = 30.0

# Extra tools from user_tools.py (the user's one place to add tools), big
# enough that tools/list needs at least 3 pages of <= 8000 bytes.
USER_TOOLS = '''
from firmware.mcp_tools import Bool, Int, Str

def tools(registry, ctx):
    for i in range(36):
        def fn(level, label, flag, i=i):
            return {"tool": i, "level": level, "label": label, "flag": flag}
        registry.add("self.extra.tool_%02d" % i,
                     "Extra tool number %d for paging tests. " % i + "It does nothing useful. " * 20,
                     fn, (Int("level", 0, 10, default=3), Str("label", "x"), Bool("flag")))
'''


class Device:
    """One firmware run in its own working directory."""

    def __init__(self, server_url, out, volume=None, user_tools=None, script=None, env=None):
        self.dir = tempfile.mkdtemp(prefix="xz-mcp-")
        cfg = {"board": "sim", "ws_url": server_url, "button_mode": "ptt", "listen_mode": "auto"}
        if volume is not None:
            cfg["volume"] = volume
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        with open(os.path.join(self.dir, "sim.json"), "w") as f:
            json.dump({"mic": MIC, "out": out, "speed": SPEED}, f)
        env = dict(env or {})
        if user_tools:
            with open(os.path.join(self.dir, "user_tools.py"), "w") as f:
                f.write(user_tools)
            # The working directory plays the device's root, where user_tools.py lives.
            env["MICROPYPATH"] = ".frozen:" + self.dir + ":" + ROOT + ":" + os.path.join(ROOT, "lib")
        self.fw = sim.Firmware(self.dir, env=env, script=script)
        self.wait("ready")

    def wait(self, kind, **match):
        deadline = time.monotonic() + WAIT_S
        while True:
            ev = self.fw.next_event(deadline)
            d = ev.get("d") or {}
            if ev["k"] == kind and all(d.get(k) == v for k, v in match.items()):
                return ev

    def config(self):
        with open(os.path.join(self.dir, "config.json")) as f:
            return json.load(f)

    def close(self):
        code = self.fw.stop() if self.fw.proc.poll() is None else self.fw.proc.returncode
        shutil.rmtree(self.dir, ignore_errors=True)
        return code


def _server(**kw):
    srv = MockServer(host="127.0.0.1", port=0, mcp_list_delay=0.05, **kw)
    srv.start_in_thread()
    return srv


def _result_text(reply, is_error=False):
    assert reply is not None, "no reply"
    assert "result" in reply, reply
    assert reply["result"]["isError"] is is_error, reply
    return reply["result"]["content"][0]["text"]


def _error(reply, code, *words):
    assert reply is not None and "error" in reply, reply
    assert reply["error"]["code"] == code, reply
    for w in words:
        assert w in reply["error"]["message"], (w, reply)


def test_session_setup_paging_every_default_tool_and_bad_requests():
    big_pad = "x" * (64 * 1024 - 400)  # 4x the receive buffer: skipped as it streams in, answered by id
    script = [
        {"name": "self.get_device_status"},  # id 1: reuses the initialize id, like stock
        {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 20}},
        {"name": "self.get_device_status"},
        {"name": "self.get_system_info"},
        {"name": "self.audio_speaker.set_volume", "arguments": {"volume": 150}},
        {"name": "self.audio_speaker.set_volume", "arguments": {"volume": "loud"}},
        {"name": "self.audio_speaker.set_volume", "arguments": {}},
        {"name": "self.no_such_tool"},
        {"payload": {"jsonrpc": "2.0", "id": 100, "method": "tools/call", "params": {
            "name": "self.audio_speaker.set_volume", "arguments": {"volume": 90, "pad": big_pad}}}},
        {"raw": '{"type":"mcp","payload":{"jsonrpc":"2.0","id":101,"method":"tools/ca'},
        {"payload": {"jsonrpc": "2.0", "method": "notifications/initialized"}, "wait": False},
        {"payload": {"jsonrpc": "2.0", "id": 102, "method": "resources/list"}},
        {"name": "self.extra.tool_07", "arguments": {"flag": True, "level": 9}},
        {"name": "self.get_device_status"},
        {"name": "self.reboot"},
    ]
    n_results = sum(1 for e in script if "name" in e or "payload" in e)
    srv = _server(mcp_script=script)
    dev = None
    try:
        dev = Device(srv.url, os.path.join(tempfile.gettempdir(), "xz-mcp-unused.wav"), user_tools=USER_TOOLS)
        dev.fw.send("press")  # opens the channel; held while the script runs
        s = srv.wait_session()
        srv.wait_for(lambda: len(s.mcp_results) >= n_results, timeout=WAIT_S, what="the MCP script")
        # self.reboot was acknowledged first, then the simulator exits with code 3
        assert dev.fw.proc.wait(timeout=10) == 3

        # initialize: the stock request (with vision) gets the reference's result
        init = s.mcp_replies[0]
        assert init == {"jsonrpc": "2.0", "id": 1, "result": {
            "protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
            "serverInfo": {"name": "sim", "version": init["result"]["serverInfo"]["version"]}}}
        assert init["result"]["serverInfo"]["version"]

        # tools/list: >= 3 pages on id 2, each <= 8000 bytes as sent, all tools once, in order
        pages = [p for p in s.mcp_replies[1:] if p.get("id") == 2 and "tools" in p.get("result", {})]
        assert len(pages) >= 3, len(pages)
        for p in pages:
            assert len(json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode()) <= 8000
        assert all("nextCursor" in p["result"] for p in pages[:-1]) and "nextCursor" not in pages[-1]["result"]
        names = [t["name"] for t in s.mcp_tools]
        assert names == ["self.get_device_status", "self.audio_speaker.set_volume"] + [
            "self.extra.tool_%02d" % i for i in range(36)]  # user-only tools not listed by default

        r = {i: reply for i, (req, reply) in enumerate(s.mcp_results)}
        assert [req["id"] for req, _ in s.mcp_results[:8]] == [1, 2, 3, 4, 5, 6, 7, 8]
        st = json.loads(_result_text(r[0]))
        assert st["audio_speaker"] == {"volume": 70} and st["system"]["free_heap"] > 0
        assert "uptime_s" in st["system"] and "type" in st["network"]
        assert _result_text(r[1]) == "true"
        assert json.loads(_result_text(r[2]))["audio_speaker"] == {"volume": 20}
        info = json.loads(_result_text(r[3]))
        assert info["version"] == 2 and info["board"]["type"] == "sim" and info["mac_address"]
        assert info["mac_address"] == s.header("Device-Id")
        _error(r[4], -32602, "volume", "maximum allowed: 100")
        _error(r[5], -32602, "volume", "expected integer")
        _error(r[6], -32602, "Missing valid argument: volume")
        _error(r[7], -32602, "Unknown tool: self.no_such_tool")
        _error(r[8], -32600, "Request too large")
        _error(r[10], -32601, "Method not implemented: resources/list")
        assert json.loads(_result_text(r[11])) == {"tool": 7, "level": 9, "label": "x", "flag": True}
        # the session survived all of it, and the 64 KB request changed nothing
        assert json.loads(_result_text(r[12]))["audio_speaker"] == {"volume": 20}
        assert _result_text(r[13]) == "true"  # reboot acknowledged
        # nothing answered the truncated frame or the notification
        assert all(p.get("id") not in (101, None) for p in s.mcp_replies)
        assert dev.config()["volume"] == 20  # set_volume persisted
    finally:
        if dev is not None:
            dev.close()
        srv.stop()


# Tools that show when they were loaded: tools() counts its runs in ctx.keep,
# which outlives the loads, and self.test.slow keeps its message in flight.
COUNTING_TOOLS = '''
def tools(registry, ctx):
    ctx.keep["loads"] = ctx.keep.get("loads", 0) + 1

    @registry.tool("self.test.loads", "How many times the tools were loaded")
    def loads():
        return ctx.keep["loads"]

    @registry.tool("self.test.slow", "Answers after half a second")
    async def slow():
        import asyncio

        await asyncio.sleep_ms(500)
        return "slow done"
'''
PROBE = os.path.join(ROOT, "host_tests", "scripts", "mcp_probe.py")


def _call(rid, name):
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": name}}


def test_mcp_is_loaded_per_message_and_not_resident_mid_reply():
    """The MCP server is loaded for each message and forgotten once none is in
    flight (firmware/app.py _mcp): not in sys.modules while the reply plays, yet
    a later tools/call still works, and two overlapping calls share one load
    and both get answers."""
    srv = _server()
    dev = None
    try:
        dev = Device(srv.url, os.path.join(tempfile.gettempdir(), "xz-mcp-unused.wav"),
                     user_tools=COUNTING_TOOLS, script=PROBE)
        dev.fw.send("press")
        s = srv.wait_session()
        srv.wait_for(lambda: len(s.mcp_tools) >= 2, timeout=WAIT_S, what="tools/list")
        time.sleep(sim.wav_duration(MIC)[0] / SPEED + 0.2)
        dev.fw.send("release")
        dev.wait("rx", type="tts", state="start")
        assert dev.wait("probe", at="speaker")["d"]["loaded"] == []  # mid-reply: none resident
        dev.wait("rx", type="tts", state="stop")

        # boot (for the listing) and this call loaded the tools each: initialize
        # and tools/list are answered without them
        before = int(_result_text(srv.mcp_request(_call(500, "self.test.loads"))))
        assert before == 2, before
        # two calls in flight at once: one load serves both, and both are answered
        srv.mcp_request(_call(501, "self.test.slow"), wait=False)
        fast = srv.mcp_request(_call(502, "self.test.loads"))
        assert int(_result_text(fast)) == before + 1
        srv.wait_for(lambda: any(r.get("id") == 501 for r in s.mcp_replies), timeout=WAIT_S, what="the slow call")
        slow = [r for r in s.mcp_replies if r.get("id") == 501][0]
        assert _result_text(slow) == "slow done"
        # a later call loads them again, and it works
        assert int(_result_text(srv.mcp_request(_call(503, "self.test.loads")))) == before + 2
        # a load that runs out of heap: the request is answered with an error, not left to time out
        with open(os.path.join(dev.dir, "mcp_oom"), "w"):
            pass
        oom = srv.mcp_request(_call(504, "self.test.loads"))
        assert oom["error"] == {"code": -32603, "message": "device out of memory"}, oom
        assert dev.wait("error")["d"]["reason"] == "MCP tools/call: out of memory"
        assert int(_result_text(srv.mcp_request(_call(505, "self.test.loads")))) == before + 3

        sent = {}
        for ev in dev.fw.seen:
            d = ev.get("d") or {}
            if ev["k"] == "probe" and d.get("at") == "mcp":
                sent[d["id"]] = d["loaded"]
        while 505 not in sent:
            d = dev.wait("probe", at="mcp")["d"]
            sent[d["id"]] = d["loaded"]
        assert "firmware.mcp" in sent[502]  # 501 still in flight: the server stays
        assert sent[501] == [] and sent[503] == [] and sent[504] == []  # the last reply out: forgotten first
        assert all(v == [] for k, v in sent.items() if k != 502), sent
    finally:
        if dev is not None:
            dev.close()
        srv.stop()


def test_tools_list_still_answers_when_boot_could_not_list_the_tools():
    """Boot lists the tools once (firmware/app.py _mcp_listing); when that load
    fails the device still boots, says why, and tools/list loads the tools."""
    srv = _server()
    dev = None
    try:
        dev = Device(srv.url, os.path.join(tempfile.gettempdir(), "xz-mcp-unused.wav"), script=PROBE,
                     env={"XZ_LISTING_OOM": "1"})
        assert any("MCP tools not listed at boot (tools/list will load them): MemoryError" in ln
                   for ln in dev.fw.log), dev.fw.log
        dev.fw.send("press")
        s = srv.wait_session()
        srv.wait_for(lambda: len(s.mcp_tools) >= 2, timeout=WAIT_S, what="tools/list")
        assert [t["name"] for t in s.mcp_tools] == ["self.get_device_status", "self.audio_speaker.set_volume"]
        dev.fw.send("release")
    finally:
        if dev is not None:
            dev.close()
        srv.stop()


def _block_energy(path):
    """Mean energy of the non-silent 60 ms blocks of a s16le WAV (silence is left out,
    so gaps between replies do not matter)."""
    from tools.common import wav

    rate, _, pcm = wav.read_wav(path)
    a = array.array("h")
    a.frombytes(pcm[: len(pcm) & ~1])
    n = rate * 60 // 1000
    energies = []
    for k in range(0, len(a) - n + 1, n):
        e = sum(x * x for x in a[k:k + n]) / n
        if e > 0:
            energies.append(e)
    assert energies, "no audio in %s" % path
    return sum(energies) / len(energies)


def _one_turn(srv, out, set_volume=None):
    n = len(srv.sessions) + 1
    dev = Device(srv.url, out)
    try:
        dev.fw.send("press")
        s = srv.wait_session(n, timeout=WAIT_S)
        srv.wait_for(lambda: len(s.mcp_tools) >= 2, timeout=WAIT_S, what="tools/list")
        if set_volume is not None:
            reply = srv.call_tool("self.audio_speaker.set_volume", {"volume": set_volume}, session=s)
            assert _result_text(reply) == "true"
        mic_s = sim.wav_duration(MIC)[0]
        time.sleep(mic_s / SPEED + 0.2)  # hold the button while the utterance plays (not an assertion)
        dev.fw.send("release")
        dev.wait("rx", type="tts", state="stop")
        dev.wait("audio", dir="play")
        return s, dev.config()
    finally:
        dev.close()


def test_set_volume_makes_the_reply_quieter():
    volume = 20
    tmp = tempfile.mkdtemp(prefix="xz-mcp-vol-")
    srv = _server()
    try:
        loud, quiet = os.path.join(tmp, "loud.wav"), os.path.join(tmp, "quiet.wav")
        _one_turn(srv, loud)
        _, cfg = _one_turn(srv, quiet, set_volume=volume)
        assert cfg["volume"] == volume
        got_db = 10 * math.log10(_block_energy(quiet) / _block_energy(loud))
        # the playback gain is (volume/100)^2 (the reference's curve): 70 -> 20 is -21.8 dB
        want_db = 20 * math.log10((volume / 70.0) ** 2)
        print("volume gain %.2f dB, want %.2f dB" % (got_db, want_db))
        assert abs(got_db - want_db) < 1.5, (got_db, want_db)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
