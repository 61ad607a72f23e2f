"""The hostile server (tools/mock_server/hostile.py) against the real firmware
under micropython: the short version of `python -m tools.bench soak`'s fuzz
phase. Message abuse arrives while listening and the turn must still complete;
frame abuse arrives on an idle session and the device must drop the link and
complete a turn on a fresh one. No crash, no hang, no secret in any output."""

from tools.bench import soak


def test_fuzz_messages_and_frames_no_crash_no_hang():
    soak.Rig.outputs.clear()
    r = soak.fuzz(300, 11, seed=3)
    assert r["failures"] == [], r["failures"]
    assert (r["crash"], r["hang"], r["lost"]) == (0, 0, 0)
    assert r["messages"] == 300 and r["frame_abuses"] == 11 and r["alive"]
    assert r["turns_ok"] == 300 // 50 + 11  # every round and every fresh session completed a turn
    kinds = r["kinds"]
    for k in ("malformed json", "wrong field types", "random binary", "lying length", "invalid utf-8 text"):
        assert kinds.get(k), (k, kinds)  # the seed reaches every kind the issue lists
    assert soak.secrets_found()["found"] == 0
