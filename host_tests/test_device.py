"""The firmware under the real micropython binary against the mock xiaozhi
server on 127.0.0.1: whole turns, the wire format, and the failure cases a
device meets in the field. Assertions are on what the server saw on the wire
and on the firmware's event timeline."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tools.common import wav
from tools.harness.device import MIC_SECONDS, finish_reply, push_to_talk, start_device, states
from tools.mock_server.server import MockServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
FAST = {"drain_s": 0.05, "mcp_list_delay": 0.05}


@pytest.fixture
def server(request):
    knobs = dict(FAST)
    knobs.update(getattr(request, "param", {}))
    srv = MockServer(**knobs)
    srv.start_in_thread()
    yield srv
    srv.stop()


@pytest.fixture
def device(tmp_path, server):
    started = []

    def start(**config):
        fw = start_device(tmp_path, server.url, **config)
        started.append(fw)
        return fw

    yield start
    for fw in started:
        fw.stop()


def _level_db(path):
    rate, _, pcm = wav.read_wav(path)
    import array
    import math

    a = array.array("h")
    a.frombytes(pcm)
    if not a:
        return None, 0.0
    ms = sum(x * x for x in a) / len(a)
    return (20 * math.log10(math.sqrt(ms) / 32768) if ms else None), len(a) / rate


@pytest.mark.parametrize("version,header", [(1, 0), (2, 16), (3, 4)])
def test_push_to_talk_turn_on_the_wire(tmp_path, server, device, version, header):
    fw = device(protocol_version=version)
    push_to_talk(fw)
    finish_reply(fw)
    assert states(fw)[-4:] == ["idle", "speaking", "draining", "idle"]

    s = server.sessions[0]
    # Handshake headers as the reference sends them (docs/protocol.md §1.2).
    assert s.header("Protocol-Version") == str(version)
    assert s.header("Device-Id") == "02:00:00:5a:4d:01"
    assert UUID4.match(s.header("Client-Id"))
    assert s.header("Authorization") is None  # no token configured
    hello = s.texts("rx")[0]
    assert hello["type"] == "hello" and hello["version"] == version
    assert hello["features"]["mcp"] is True
    assert hello["audio_params"] == {"format": "pcm", "sample_rate": 16000, "channels": 1, "frame_duration": 60}
    listens = s.texts("rx", "listen")
    assert [m["state"] for m in listens] == ["start", "stop"]
    assert listens[0]["mode"] == "manual" and listens[0]["session_id"] == s.session_id
    # Every uplink frame is one 60 ms PCM frame in the chosen framing.
    up = s.binary("rx")
    assert set(up) == {1920 + header}
    assert abs(len(up) * 0.06 - MIC_SECONDS) < 0.6
    # The scripted ASR heard real speech, not silence.
    stt = s.turns[0].stt
    assert s.turns[0].level_db > -35, stt
    # The reply was played, and the speaker WAV has it.
    level, seconds = _level_db(tmp_path / "reply.wav")
    assert level is not None and level > -40 and seconds > 1.0


def test_client_id_is_generated_once_and_kept(tmp_path, server, device):
    fw = device()
    fw.stop()
    first = json.load(open(tmp_path / "config.json"))["client_id"]
    assert UUID4.match(first)
    fw = start_device(tmp_path, server.url)
    push_to_talk(fw)
    fw.stop()
    assert server.sessions[0].header("Client-Id") == first


def test_token_goes_as_bearer(tmp_path, device, server):
    fw = device(ws_token="tok123")
    push_to_talk(fw)
    server.wait_session(1)
    assert server.sessions[0].header("Authorization") == "Bearer tok123"
    fw.stop()


def _uplink_while_replying(s):
    """Per reply: binary frames the server received from its second
    sentence_start (well after tts start, so no frame is still in flight from
    before the mic went off) until the device's next listen start, or the end
    of the session."""
    counts, window, sentences = [], None, 0
    for f in s.frames:
        if f.kind == "text" and isinstance(f.data, dict):
            t, st = f.data.get("type"), f.data.get("state")
            if f.dir == "tx" and t == "tts" and st == "start":
                sentences = 0
            elif f.dir == "tx" and t == "tts" and st == "sentence_start":
                sentences += 1
                if sentences == 2 and window is None:
                    window = 0
            elif f.dir == "rx" and t == "listen" and st == "start" and window is not None:
                counts.append(window)
                window = None
        elif f.kind == "binary" and f.dir == "rx" and window is not None:
            window += 1
    return counts if window is None else counts + [window]


def _uplink_per_listen(s):
    """Binary frames the server received from each listen start to the next
    (or the end): all a listening period sent, the frames that crossed the
    server's VAD end on the wire included."""
    counts = []
    for f in s.frames:
        if f.kind == "text" and isinstance(f.data, dict) and f.dir == "rx" and f.data.get("type") == "listen" \
                and f.data.get("state") == "start":
            counts.append(0)
        elif f.kind == "binary" and f.dir == "rx" and counts:
            counts[-1] += 1
    return counts


def test_auto_mode_listens_again_after_playback(server, device):
    fw = device(button_mode="click")
    fw.send("click")
    fw.wait_for("listening never started", "tx", type="listen", state="start", mode="auto")
    for _ in range(2):
        finish_reply(fw)
        fw.wait_for("no new listen start", "tx", type="listen", state="start", mode="auto")
    fw.send("click")  # listening -> close
    fw.wait_for("did not go idle", "state", to="idle")
    s = server.sessions[0]
    # No audio was sent while the device was speaking or draining the reply
    # (mic off, docs/protocol.md §6.3): the server saw none in that window.
    assert _uplink_while_replying(s)[:2] == [0, 0], _uplink_while_replying(s)
    assert [t.end for t in s.turns[:2]] == ["vad", "vad"]  # the server's VAD ended each utterance
    assert len(s.turns) >= 2 and all(t.frames > 10 for t in s.turns[:2])
    # The device waited in "draining", not in "listening" with the mic off.
    assert states(fw).count("draining") >= 2
    ups = [e["d"]["frames"] for e in fw.seen if e["k"] == "audio" and e["d"]["dir"] == "up"]
    # Every frame the device counted reached the server (one may land after the
    # server's VAD has ended the turn: it crossed the stop on the wire).
    assert ups[:2] == _uplink_per_listen(s)[:2], (ups, _uplink_per_listen(s))


def test_realtime_mode_sends_audio_while_speaking(server, device):
    """The check above can fail: realtime keeps the mic open through the
    reply, and the same window then holds frames."""
    fw = device(button_mode="click", listen_mode="realtime")
    fw.send("click")
    fw.wait_for("listening never started", "tx", type="listen", state="start", mode="realtime")
    finish_reply(fw)
    fw.send("click")
    fw.wait_for("did not go idle", "state", to="idle")
    counts = _uplink_while_replying(server.sessions[0])
    assert counts and counts[0] > 10, counts


def test_abort_while_speaking_then_listen(server, device):
    fw = device()
    push_to_talk(fw)
    fw.wait_for("no reply", "rx", type="tts", state="start")
    fw.wait_for("no first sentence", "rx", type="tts", state="sentence_start")
    fw.wait_for("no second sentence", "rx", type="tts", state="sentence_start")  # some audio has played
    fw.send("press")  # barge in: abort the reply and listen at once
    fw.wait_for("abort not sent", "tx", type="abort")
    fw.wait_for("no new listen", "tx", type="listen", state="start", mode="manual")
    time.sleep(MIC_SECONDS)  # hold while the mic WAV plays again
    fw.send("release")
    played = finish_reply(fw)
    s = server.sessions[0]
    assert s.turns[0].aborted
    # The new reply played in full, and the cut-short one is not counted in it.
    assert played["d"]["frames"] == s.turns[1].audio_frames
    # The stock server's second tts stop after an abort must not disturb the new turn.
    assert s.tts_states().count("stop") >= 2
    assert states(fw)[-1] == "idle"


def test_downlink_audio_ignored_outside_speaking(server, device):
    fw = device()
    push_to_talk(fw)
    ev = finish_reply(fw)
    down = [e["d"] for e in fw.seen if e["k"] == "audio" and e["d"]["dir"] == "down"][-1]
    assert down["frames"] == server.sessions[0].turns[0].audio_frames
    assert ev["d"]["frames"] == down["frames"] and down["dropped"] == 0
    # Now idle with the channel open: audio the server sends is not played (docs/protocol.md §2.3).
    tone = bytes(2880)
    for _ in range(5):
        server.send_audio(tone)
    server.send_json({"type": "tts", "state": "start", "session_id": server.sessions[0].session_id})
    server.send_json({"type": "tts", "state": "stop", "session_id": server.sessions[0].session_id})
    played = fw.wait_for("empty reply not reported", "audio", dir="play")
    assert played["d"]["frames"] == 0
    ignored = [e["d"] for e in fw.seen if e["k"] == "audio" and e["d"]["dir"] == "down"][-1]
    assert ignored["ignored"] == 5 and ignored["frames"] == 0


@pytest.mark.parametrize("server", [{"no_hello": True}], indirect=True)
def test_server_never_says_hello(server, device):
    fw = device()
    fw.send("press")
    err = fw.wait_for("no error reported", "error", timeout=15)
    assert "no server hello within 10000 ms" in err["d"]["reason"]
    fw.wait_for("not back to idle", "state", to="idle")
    fw.send("release")


@pytest.mark.parametrize("server", [{"close_mid_tts": 5}], indirect=True)
def test_server_closes_mid_reply_then_next_turn_works(server, device):
    fw = device()
    push_to_talk(fw)
    fw.wait_for("no reply", "rx", type="tts", state="start")
    closed = fw.wait_for("close not noticed", "closed")
    assert closed["d"]["by"] == "server", closed
    assert "server closed" in closed["d"]["reason"] or "connection" in closed["d"]["reason"]
    assert states(fw)[-1] == "idle"  # the close is reported once the device is idle
    # The fault hits only the first session; the device recovers by itself.
    push_to_talk(fw)
    finish_reply(fw)
    assert len(server.sessions) == 2


@pytest.mark.parametrize("server", [{"garbage": True}], indirect=True)
def test_garbage_from_the_server_is_survived(server, device):
    fw = device(protocol_version=2)
    push_to_talk(fw)
    played = finish_reply(fw)
    assert fw.proc.poll() is None
    # Each piece of garbage the mock injects (tools/mock_server/server.py
    # inject_garbage) was refused for its own reason, and nothing else was.
    text = [line.split("dropped bad frame: ", 1)[1] for line in fw.log if "dropped bad frame: " in line]
    assert sorted(r.split(":")[0] for r in text) == sorted(
        ["not JSON"] * 2 + ["not a JSON object"] * 3 + ["message without a string 'type'"]), text
    audio = [line.split("dropped downlink frame: ", 1)[1] for line in fw.log if "dropped downlink frame: " in line]
    assert len(audio) == 3 and all(r.startswith("v2 frame: ") for r in audio), audio
    assert any(e["k"] == "rx" and e["d"] == {"type": "no_such_type", "ignored": True} for e in fw.seen)
    # ... and none of it reached the speaker: the reply played exactly the server's frames.
    assert played["d"]["frames"] == server.sessions[0].turns[0].audio_frames


@pytest.mark.parametrize("server", [{"oversized": True}], indirect=True)
def test_oversized_frames_are_skipped_and_the_session_stays(server, device):
    # 200 KB audio and JSON frames: read through without buffering, one log
    # line each, and the reply goes on over the same connection.
    fw = device()
    push_to_talk(fw)
    finish_reply(fw)
    skipped = [line for line in fw.log if "skipped a" in line]
    assert len(skipped) == 2 and all("byte message (receive buffer" in line for line in skipped), skipped
    assert not [e for e in fw.seen if e["k"] == "closed"]
    assert len(server.sessions) == 1


@pytest.mark.parametrize("server", [{"auth_key": "right-key", "fault_sessions": 0}], indirect=True)
def test_refused_auth_is_a_clear_error_with_backoff(server, device):
    fw = device(device_secret="wrong-key")
    fw.send("press")
    first = fw.wait_for("no error", "error", timeout=15)
    fw.send("release")
    assert "认证失败" in first["d"]["reason"], first  # the stock server's refusal, shown as sent
    fw.wait_for("not back to idle", "state", to="idle")
    fw.send("press")
    press = fw.wait_for("no press", "button")
    second = fw.wait_for("no second error", "error", timeout=15)
    fw.send("release")
    # The second attempt waited out a backoff (500-1000 ms after one failure), not a hot loop.
    assert second["t"] - press["t"] >= 500, (press, second)
    assert any("retrying in" in line for line in fw.log)


@pytest.mark.parametrize("server", [{"auth_key": "peer-test-secret"}], indirect=True)
def test_signed_token_accepted(server, device):
    fw = device(device_secret="peer-test-secret")
    push_to_talk(fw)
    finish_reply(fw)
    assert server.sessions[0].auth_ok


def test_server_gone_is_a_clear_error(tmp_path):
    fw = start_device(tmp_path, "ws://127.0.0.1:9/xiaozhi/v1/")
    fw.send("press")
    err = fw.wait_for("no error", "error", timeout=15)
    assert "server not connected" in err["d"]["reason"]
    fw.wait_for("not back to idle", "state", to="idle")
    fw.stop()


def test_sim_cli_demo_turn(tmp_path):
    out = tmp_path / "reply.wav"
    events = tmp_path / "ev.jsonl"
    p = subprocess.run([sys.executable, "-m", "tools.sim", "--out", str(out), "--events", str(events)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "you:" in p.stdout and "reply:" in p.stdout and "done: 1 turn(s)" in p.stdout
    kinds = {json.loads(line)["k"] for line in open(events)}
    assert {"state", "tx", "rx", "audio", "button"} <= kinds
    level, seconds = _level_db(out)
    assert level is not None and seconds > 1.0


def test_sim_cli_reports_failure_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "tools.sim", "--server", "ws://127.0.0.1:9/x",
                        "--out", str(tmp_path / "o.wav")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sim: FAILED: ") and "server not connected" in lines[0]


def test_sim_cli_rejects_a_bad_mic_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    p = subprocess.run([sys.executable, "-m", "tools.sim", "--mic", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "mic WAV" in p.stderr


def test_goodbye_ends_the_session_and_next_turn_reconnects(server, device):
    fw = device()
    push_to_talk(fw)
    finish_reply(fw)
    s = server.sessions[0]
    server.send_json({"type": "goodbye", "session_id": s.session_id})
    fw.wait_for("goodbye not seen", "rx", type="goodbye")
    closed = fw.wait_for("session not closed", "closed")
    assert closed["d"] == {"by": "device", "reason": "server said goodbye"}, closed
    push_to_talk(fw)
    finish_reply(fw)
    assert len(server.sessions) == 2


def test_unreadable_ca_file_is_a_clear_error(tmp_path, server, device):
    fw = device(ca_file=str(tmp_path / "missing-ca.der"))
    fw.send("press")
    err = fw.wait_for("no error", "error", timeout=15)
    assert "CA file" in err["d"]["reason"] and "unreadable" in err["d"]["reason"]
    fw.wait_for("not back to idle", "state", to="idle")
    fw.send("release")
    assert fw.proc.poll() is None


def test_press_during_ota_retries_uses_stored_settings(tmp_path, server):
    # The OTA endpoint is down; the user set ws_url. A press cuts the 10 s
    # retry wait short (docs/protocol.md §5.3) and the device comes up with its settings.
    fw = start_device(tmp_path, server.url, wait_ready=False, ota_url="http://127.0.0.1:9/xiaozhi/ota/",
                      wifi=[{"ssid": "sim-ap", "password": "simsimsim"}],
                      sim_extra={"networks": [{"ssid": "sim-ap", "password": "simsimsim"}]})
    try:
        fw.wait_for("no OTA retry", "ota_retry")
        fw.send("press")
        fw.send("release")
        skipped = fw.wait_for("OTA not skipped", "ota", timeout=5)
        assert skipped["d"]["result"] == "skipped"
        fw.wait_for("not ready", "ready", timeout=5)
        push_to_talk(fw)
        finish_reply(fw)
    finally:
        fw.stop()


def test_sim_cli_names_a_bad_config_value(tmp_path):
    p = subprocess.run([sys.executable, "-m", "tools.sim", "--volume", "150", "--out", str(tmp_path / "o.wav")],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "config key 'volume' must be 0..100" in p.stderr


def test_each_turn_reports_its_own_figures_and_the_heap(server, device):
    fw = device()
    for _ in range(2):
        push_to_talk(fw)
        finish_reply(fw)
        fw.wait_for("no heap after the turn", "heap")
    s = server.sessions[0]
    plays = [e for e in fw.seen if e["k"] == "audio" and e["d"]["dir"] == "play"]
    assert [e["d"]["frames"] for e in plays] == [t.audio_frames for t in s.turns[:2]]
    # The heap event follows each turn's playback report, once per turn.
    kinds = [e["k"] for e in fw.seen if e["k"] == "heap" or (e["k"] == "audio" and e["d"]["dir"] == "play")]
    assert kinds == ["audio", "heap", "audio", "heap"], kinds
    heaps = [e["d"] for e in fw.seen if e["k"] == "heap"]
    assert all(h["free"] > 0 and h["alloc"] > 0 for h in heaps), heaps


# The server paces its reply at half real time, so playback keeps running dry.
@pytest.mark.parametrize("server", [{"pace_ms": 120, "burst": 1, "fault_sessions": 0}], indirect=True)
def test_underruns_are_counted_per_turn(server, device):
    fw = device()
    for _ in range(2):
        push_to_talk(fw)
        finish_reply(fw)
    plays = [e["d"] for e in fw.seen if e["k"] == "audio" and e["d"]["dir"] == "play"]
    first, second = plays[0]["underruns"], plays[1]["underruns"]
    assert first > 3 and second > 3, plays
    # Per turn: two alike replies count alike (a running total would double).
    assert second <= 1.5 * first + 3 and second <= plays[1]["frames"], plays


LIVENESS = {"keepalive_s": 1, "link_timeout_s": 3}


@pytest.mark.parametrize("server", [{"ping_interval": None, "ping_timeout": None}], indirect=True)
def test_idle_session_with_a_server_that_never_pings_stays_open(server, device):
    """Our PINGs get PONGs: a quiet but live server is not a dead link. (The
    same with the default 10/25 s for 5 minutes: tools/bench/keepalive_soak.py.)"""
    fw = device(json_ping=True, **LIVENESS)
    push_to_talk(fw)
    finish_reply(fw)
    time.sleep(4 * LIVENESS["link_timeout_s"])  # idle, four times longer than the timeout
    assert not [e for e in fw.seen if e["k"] in ("closed", "error")], fw.seen[-5:]
    push_to_talk(fw)
    finish_reply(fw)
    s = server.sessions[0]
    assert len(server.sessions) == 1 and not s.closed
    # json_ping adds the stock JSON ping beside each WebSocket PING (the mock, like stock, ignores it).
    assert len(s.texts("rx", "ping")) >= 4 and s.texts("rx", "ping")[0] == {"type": "ping"}


@pytest.mark.parametrize("server", [{"ping_interval": None, "ping_timeout": None, "hang_after_listen_stop": True}],
                         indirect=True)
def test_a_hung_peer_is_found_and_the_next_press_opens_a_fresh_session(server, device):
    fw = device(**LIVENESS)
    push_to_talk(fw)
    stop = [e for e in fw.seen if e["k"] == "tx" and e["d"].get("state") == "stop"][-1]
    closed = fw.wait_for("the hung peer was not noticed", "closed", timeout=30)
    assert closed["d"] == {"by": "device", "reason": "no answer for 3 s"}, closed
    # Not before the bound: the last frame from the server came before the listen stop.
    assert closed["t"] - stop["t"] >= 3000, (stop, closed)
    assert states(fw)[-1] == "idle"
    assert not server.sessions[0].texts("rx", "ping")  # json_ping is off by default
    push_to_talk(fw)
    finish_reply(fw)
    assert len(server.sessions) == 2 and server.sessions[1].turns[0].audio_frames > 0


def test_wifi_loss_closes_the_session_through_the_device(tmp_path, server):
    net = [{"ssid": "sim-ap", "password": "simsimsim"}]
    fw = start_device(tmp_path, server.url, wifi=net, sim_extra={"networks": net})
    try:
        fw.send("press")
        fw.wait_for("listening never started", "tx", type="listen", state="start")
        fw.send("wifi down")
        closed = fw.wait_for("session not closed", "closed")
        assert closed["d"] == {"by": "device", "reason": "Wi-Fi lost"}, closed
        assert states(fw)[-1] == "idle"
        fw.send("release")
    finally:
        fw.stop()


@pytest.mark.parametrize("server", [{"format": "opus"}], indirect=True)
def test_an_opus_server_is_refused_in_one_line_naming_the_gateway(server, device):
    """The stock server echoes our "pcm" in its hello, then sends Opus."""
    fw = device()
    push_to_talk(fw)
    err = fw.wait_for("opus downlink not refused", "error", timeout=30)
    assert err["d"]["reason"].startswith("server sends opus audio, which this device cannot decode")
    assert "gateway" in err["d"]["reason"]
    closed = fw.wait_for("channel not closed", "closed")
    assert closed["d"] == {"by": "device", "reason": err["d"]["reason"]}, closed
    assert not [e for e in fw.seen if e["k"] == "audio" and e["d"]["dir"] == "play"]  # nothing played as noise


def test_sim_cli_fails_against_an_opus_server(tmp_path):
    srv = MockServer(format="opus", **FAST)
    srv.start_in_thread()
    try:
        p = subprocess.run([sys.executable, "-m", "tools.sim", "--server", srv.url, "--out", str(tmp_path / "o.wav")],
                           cwd=ROOT, capture_output=True, text=True, timeout=90)
    finally:
        srv.stop()
    assert p.returncode == 1, p.stdout + p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sim: FAILED: ") and "opus" in lines[0] and "gateway" in lines[0]
