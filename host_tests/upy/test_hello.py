# The hellos match the reference's shapes (docs/protocol.md §1.3–§1.4) and a bad
# server hello is refused with a reason.
try:
    import json
except ImportError:
    import ujson as json

from firmware import hello as H


def test_client_hello_fields():
    h = json.loads(H.client_hello(3, "pcm"))
    assert h["type"] == "hello" and h["version"] == 3 and h["transport"] == "websocket"
    assert h["features"]["mcp"] is True
    assert h["audio_params"] == {"format": "pcm", "sample_rate": 16000, "channels": 1, "frame_duration": 60}


def test_server_hello_defaults_and_values():
    h = H.server_hello({"type": "hello", "transport": "websocket"}, "old")
    assert h.session_id == "old" and h.sample_rate == 24000 and h.frame_ms == 60
    h = H.server_hello({"type": "hello", "transport": "websocket", "session_id": "S",
                       "audio_params": {"format": "pcm", "sample_rate": 16000, "frame_duration": 60}})
    assert h.session_id == "S" and h.sample_rate == 16000 and h.format == "pcm" and not h.paced
    h = H.server_hello({"type": "hello", "transport": "websocket", "audio_params": {"paced": True}})
    assert h.paced  # the gateway's marker; anything but true is not it
    assert not H.server_hello({"type": "hello", "transport": "websocket", "audio_params": {"paced": 1}}).paced


def test_server_hello_refusals_name_the_problem():
    cases = (
        ({"type": "hello"}, "transport"),
        ({"type": "hello", "transport": "udp"}, "transport"),
        ({"type": "hello", "transport": "websocket", "audio_params": {"sample_rate": "x"}}, "sample_rate"),
        ({"type": "hello", "transport": "websocket", "audio_params": {"sample_rate": 96000}}, "sample_rate"),
        ({"type": "hello", "transport": "websocket", "audio_params": {"frame_duration": 0}}, "frame_duration"),
    )
    for msg, word in cases:
        try:
            H.server_hello(msg)
        except ValueError as e:
            assert word in str(e), str(e)
        else:
            raise AssertionError(msg)
