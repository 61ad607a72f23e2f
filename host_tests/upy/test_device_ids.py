# The Device-Id (firmware/identity.py) and Client-Id (firmware/startup.py)
# values of the handshake headers (docs/protocol.md §1.2).
from firmware.identity import format_mac
from firmware.startup import uuid4


def test_mac_and_uuid():
    assert format_mac(b"\xcc\xba\x97\x04\x92\x94") == "cc:ba:97:04:92:94"
    u = uuid4(bytes(range(16)))
    assert len(u) == 36 and u[14] == "4" and u[19] in "89ab" and u == u.lower()
