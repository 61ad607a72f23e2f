# firmware/channel_open's pure part: the handshake headers (docs/protocol.md §1.2).
from firmware import channel_open as O


def test_headers_bearer_and_as_is():
    h = O.headers("abc", 2, "aa:bb:cc:dd:ee:ff", "u-1")
    assert h == [("Authorization", "Bearer abc"), ("Protocol-Version", "2"),
                 ("Device-Id", "aa:bb:cc:dd:ee:ff"), ("Client-Id", "u-1")]
    assert O.headers("Basic xyz", 1, "d", "c")[0] == ("Authorization", "Basic xyz")
    assert [k for k, _ in O.headers("", 1, "d", "c")] == ["Protocol-Version", "Device-Id", "Client-Id"]
