# xiaozhi binary audio framing on WebSocket (protocol reference section 3.2).
#   v1: the frame is the payload, no header.
#   v2: 16-byte header, big-endian: version u16 (=2), type u16 (0 = audio),
#       reserved u32, timestamp u32 (ms, server-side AEC), payload_size u32.
#   v3: 4-byte header: type u8 (0), reserved u8, payload_size u16.
# One Framer per session; encode_into()/decode() run per frame and allocate
# nothing: the header is written byte by byte into the caller's buffer and
# decode() only stores small ints on self.
#
# Timestamps are u32. On 32-bit ports ints >= 2**30 are heap objects, so a
# timestamp with either top bit set costs one small allocation in decode()
# and is accepted by encode_into() as given. Servers without AEC send 0.
try:
    from micropython import const
except ImportError:  # CPython host tools can reuse this module
    def const(x):
        return x

_V2_HDR = const(16)
_V3_HDR = const(4)
_V3_MAX = const(65535)
# v1/v2 have no size limit of their own; 2**30 - 1 keeps every length a small
# int on 32-bit ports (the WebSocket layer enforces the real message limit).
_MAX_PAYLOAD = const(0x3FFFFFFF)


class Framer:
    """Encoder/decoder for one binary protocol version (1, 2 or 3)."""

    def __init__(self, version):
        if version == 1:
            self.header_len = 0
            self.max_payload = _MAX_PAYLOAD
        elif version == 2:
            self.header_len = _V2_HDR
            self.max_payload = _MAX_PAYLOAD
        elif version == 3:
            self.header_len = _V3_HDR
            self.max_payload = _V3_MAX
        else:
            raise ValueError("binary protocol version %r not 1, 2 or 3" % (version,))
        self.version = version
        # Set by decode(): payload length, type field and timestamp (0 when the
        # version carries none).
        self.payload_len = 0
        self.type = 0
        self.timestamp = 0

    def encode_into(self, buf, payload_len, timestamp=0):
        """Write the header at buf[0:header_len]; the caller puts the payload
        at buf[header_len:]. Returns the whole frame length. The type field is
        always 0 (audio); timestamp is used by v2 only."""
        h = self.header_len
        if not 0 <= payload_len <= self.max_payload:
            raise ValueError("v%d frame: payload %d bytes > %d" % (self.version, payload_len, self.max_payload))
        if h + payload_len > len(buf):
            raise ValueError("v%d frame: %d-byte buffer < %d" % (self.version, len(buf), h + payload_len))
        if h == _V2_HDR:
            if not 0 <= timestamp <= 0xFFFFFFFF:
                raise ValueError("v2 frame: timestamp %r not a u32" % (timestamp,))
            buf[0] = 0
            buf[1] = 2
            buf[2] = 0
            buf[3] = 0
            buf[4] = 0
            buf[5] = 0
            buf[6] = 0
            buf[7] = 0
            buf[8] = (timestamp >> 24) & 0xFF
            buf[9] = (timestamp >> 16) & 0xFF
            buf[10] = (timestamp >> 8) & 0xFF
            buf[11] = timestamp & 0xFF
            buf[12] = (payload_len >> 24) & 0xFF
            buf[13] = (payload_len >> 16) & 0xFF
            buf[14] = (payload_len >> 8) & 0xFF
            buf[15] = payload_len & 0xFF
        elif h == _V3_HDR:
            buf[0] = 0
            buf[1] = 0
            buf[2] = payload_len >> 8
            buf[3] = payload_len & 0xFF
        return h + payload_len

    def decode(self, mv):
        """Validate a received binary frame; returns the payload offset and sets
        payload_len, type and timestamp. ValueError names what is wrong."""
        n = len(mv)
        h = self.header_len
        if h == 0:
            self.payload_len = n
            self.type = 0
            self.timestamp = 0
            return 0
        if n < h:
            raise ValueError("v%d frame: %d bytes < %d-byte header" % (self.version, n, h))
        if h == _V2_HDR:
            ver = (mv[0] << 8) | mv[1]
            if ver != 2:
                raise ValueError("v2 frame: version field %d, expected 2" % ver)
            if mv[12] & 0xC0:
                # Sizes this large can never match a frame we accepted.
                raise ValueError("v2 frame: payload_size >= 2**30")
            size = (mv[12] << 24) | (mv[13] << 16) | (mv[14] << 8) | mv[15]
            typ = (mv[2] << 8) | mv[3]
            ts = (mv[8] << 24) | (mv[9] << 16) | (mv[10] << 8) | mv[11]
        else:
            size = (mv[2] << 8) | mv[3]
            typ = mv[0]
            ts = 0
        got = n - h
        if size > got:
            raise ValueError("v%d frame: payload_size %d > %d bytes received" % (self.version, size, got))
        if size < got:
            raise ValueError("v%d frame: payload_size %d < %d bytes received" % (self.version, size, got))
        self.payload_len = size
        self.type = typ
        self.timestamp = ts
        return h
