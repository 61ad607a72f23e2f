"""Binary audio framing, protocol versions 1/2/3 (docs/protocol.md §3.2).

v1: bare payload.
v2: 16-byte header: version u16 (=2), type u16 (0), reserved u32, timestamp u32,
    payload_size u32 — big-endian.
v3: 4-byte header: type u8 (0), reserved u8, payload_size u16 — big-endian.

The stock server only speaks v1. The gateway speaks all three toward devices;
the mock server serves all three so the device's framing can be tested.
"""

import struct

VERSIONS = (1, 2, 3)
_V2 = struct.Struct(">HHIII")
_V3 = struct.Struct(">BBH")


class FramingError(ValueError):
    pass


def pack(version, payload, timestamp=0, ptype=0):
    if version == 1:
        return bytes(payload)
    if version == 2:
        return _V2.pack(2, ptype, 0, timestamp & 0xFFFFFFFF, len(payload)) + bytes(payload)
    if version == 3:
        if len(payload) > 0xFFFF:
            raise FramingError(f"v3 payload of {len(payload)} bytes exceeds 65535")
        return _V3.pack(ptype, 0, len(payload)) + bytes(payload)
    raise FramingError(f"unknown protocol version {version!r}")


def unpack(version, data):
    """Return (payload, timestamp) or raise FramingError for a malformed frame."""
    if version == 1:
        return bytes(data), 0
    if version == 2:
        if len(data) < _V2.size:
            raise FramingError(f"v2 frame of {len(data)} bytes is shorter than its header")
        ver, _ptype, _res, ts, size = _V2.unpack_from(data)
        if ver != 2:
            raise FramingError(f"v2 header says version {ver}")
        if size != len(data) - _V2.size:
            raise FramingError(f"v2 header says {size} payload bytes, frame has {len(data) - _V2.size}")
        return bytes(data[_V2.size:]), ts
    if version == 3:
        if len(data) < _V3.size:
            raise FramingError(f"v3 frame of {len(data)} bytes is shorter than its header")
        _ptype, _res, size = _V3.unpack_from(data)
        if size != len(data) - _V3.size:
            raise FramingError(f"v3 header says {size} payload bytes, frame has {len(data) - _V3.size}")
        return bytes(data[_V3.size:]), 0
    raise FramingError(f"unknown protocol version {version!r}")


def lying_frame(version, payload):
    """A frame whose header gives the wrong payload size (fault injection).

    It claims more than the frame carries; only v3's 16-bit size, wrapping for
    payloads near or over 64 KB, can claim less.
    """
    if version == 3:
        return _V3.pack(0, 0, (len(payload) + 1000) & 0xFFFF) + bytes(payload)
    # v1 has no header to lie with; send a v2-looking header anyway.
    return _V2.pack(2, 0, 0, 0, len(payload) + 100000) + bytes(payload)
