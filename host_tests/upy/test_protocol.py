# Protocol messages match the reference's shapes (docs/protocol.md §1–§2) and bad server
# messages are refused with a reason.
try:
    import json
except ImportError:
    import ujson as json

from firmware import protocol as P


def test_headers_bearer_and_as_is():
    h = P.headers("abc", 2, "aa:bb:cc:dd:ee:ff", "u-1")
    assert h == [("Authorization", "Bearer abc"), ("Protocol-Version", "2"),
                 ("Device-Id", "aa:bb:cc:dd:ee:ff"), ("Client-Id", "u-1")]
    assert P.headers("Basic xyz", 1, "d", "c")[0] == ("Authorization", "Basic xyz")
    assert [k for k, _ in P.headers("", 1, "d", "c")] == ["Protocol-Version", "Device-Id", "Client-Id"]


def test_mac_and_uuid():
    assert P.format_mac(b"\xcc\xba\x97\x04\x92\x94") == "cc:ba:97:04:92:94"
    u = P.uuid4(bytes(range(16)))
    assert len(u) == 36 and u[14] == "4" and u[19] in "89ab" and u == u.lower()


def test_client_hello_fields():
    h = json.loads(P.client_hello(3, "pcm"))
    assert h["type"] == "hello" and h["version"] == 3 and h["transport"] == "websocket"
    assert h["features"]["mcp"] is True
    assert h["audio_params"] == {"format": "pcm", "sample_rate": 16000, "channels": 1, "frame_duration": 60}


def test_device_messages_are_compact_session_first_and_escaped():
    assert P.listen_start("S", "auto") == '{"session_id":"S","type":"listen","state":"start","mode":"auto"}'
    assert P.listen_stop("S") == '{"session_id":"S","type":"listen","state":"stop"}'
    assert P.abort("S") == '{"session_id":"S","type":"abort"}'
    assert P.abort("S", "wake_word_detected").endswith('"reason":"wake_word_detected"}')
    m = json.loads(P.listen_detect('a"b', "你好小智"))
    assert m["session_id"] == 'a"b' and m["text"] == "你好小智" and m["state"] == "detect"
    m = json.loads(P.mcp("S", {"jsonrpc": "2.0", "id": 1, "result": {}}))
    assert m["type"] == "mcp" and m["payload"]["id"] == 1


def test_listen_mode_checked():
    try:
        P.listen_start("S", "shout")
    except ValueError as e:
        assert "shout" in str(e)
    else:
        raise AssertionError


def test_parse_refuses_bad_frames():
    for bad in ("{", "[1,2]", "42", '{"type": 5}', '{"no": "type"}'):
        try:
            P.parse(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    assert P.parse('{"type":"stt","text":"hi"}')["text"] == "hi"


def test_server_hello_defaults_and_values():
    h = P.ServerHello({"type": "hello", "transport": "websocket"}, "old")
    assert h.session_id == "old" and h.sample_rate == 24000 and h.frame_ms == 60
    h = P.ServerHello({"type": "hello", "transport": "websocket", "session_id": "S",
                       "audio_params": {"format": "pcm", "sample_rate": 16000, "frame_duration": 60}})
    assert h.session_id == "S" and h.sample_rate == 16000 and h.format == "pcm"


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
            P.ServerHello(msg)
        except ValueError as e:
            assert word in str(e), str(e)
        else:
            raise AssertionError(msg)


def test_mcp_request_id_from_the_head_of_a_skipped_message():
    # The id an oversized MCP request's error reply needs, from its first bytes only.
    cases = [
        (b'{"type":"mcp","payload":{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{"id":99}}}}',
         7),
        (b'{"type":"mcp","payload":{"jsonrpc":"2.0","params":{"arguments":{"id":99}},"id":7}}', 7),  # not the inner one
        (b'{"type":"mcp","payload":{"id" : "a,b}","method":"x"}}', "a,b}"),
        (b'{"type":"mcp","payload":{"a":"q\\"id\\"","id":5}}', 5),  # "id" inside a string is not a key
        (b'{"type":"mcp","payload":{"method":"x","params":{"pad":"xxxx', None),  # cut before any id
        (b'{"type":"tts","payload":{"id":3}}', None),  # not MCP
        (b'{"type":"mcp","payload":{"id":true}}', None),  # not a valid JSON-RPC id
    ]
    for head, want in cases:
        assert P.mcp_request_id(memoryview(head)) == want, head
