# Session messages match the reference's shapes (docs/protocol.md §1.5–§2) and bad
# server messages are refused with a reason. The hellos: test_hello.py.
try:
    import json
except ImportError:
    import ujson as json

from firmware import protocol as P


def test_device_messages_are_compact_session_first_and_escaped():
    assert P.listen_start("S", "auto") == '{"session_id":"S","type":"listen","state":"start","mode":"auto"}'
    assert P.listen_stop("S") == '{"session_id":"S","type":"listen","state":"stop"}'
    assert P.abort("S") == '{"session_id":"S","type":"abort"}'
    assert P.abort("S", "wake_word_detected").endswith('"reason":"wake_word_detected"}')
    m = json.loads(P.listen_detect('a"b', "你好小智"))
    assert m["session_id"] == 'a"b' and m["text"] == "你好小智" and m["state"] == "detect"
    m = json.loads(P.mcp("S", '{"jsonrpc":"2.0","id":1,"result":{}}'))
    assert m["type"] == "mcp" and m["payload"]["id"] == 1
    e = json.loads(P.mcp_error("a\"b", -32603, 'out "of" memory'))
    assert e == {"jsonrpc": "2.0", "id": 'a"b', "error": {"code": -32603, "message": 'out "of" memory'}}


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


def test_as_text_never_raises():
    assert P.as_text(memoryview("你好".encode())) == "你好"
    assert P.as_text(memoryview(b"\xff\xfe!")) == "<3 bytes of non-UTF-8 text>"
