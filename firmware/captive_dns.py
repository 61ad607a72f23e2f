# Captive DNS for the provisioning AP: every A query is answered with the
# portal's address, so a phone that joins Xiaozhi-XXXX lands on the portal
# whatever host its captive-portal check asks for.
import socket

try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio

from firmware import log

_TAG = "dns"
_TTL = 60
_POLL_S = 0.02  # MicroPython asyncio has no datagram endpoints; poll a non-blocking socket


def answer(query, ip):
    """A DNS reply to `query` pointing at `ip` (4 bytes), or None to ignore a
    packet that is not a standard query with one question."""
    if len(query) < 17 or query[2] & 0xF8:  # QR set or opcode != 0
        return None
    if query[4:6] != b"\x00\x01":
        return None
    i = 12
    while True:  # skip the QNAME labels
        if i >= len(query):
            return None
        n = query[i]
        if n == 0:
            break
        if n & 0xC0:
            return None  # compression has no place in a question
        i += n + 1
    end = i + 5
    if end > len(query):
        return None
    qtype = query[i + 1] << 8 | query[i + 2]
    is_a = qtype in (1, 255)  # A or ANY; AAAA etc. get an empty NOERROR answer
    flags = bytes((0x80 | (query[2] & 0x01), 0x80))  # response, copy RD, RA
    head = query[0:2] + flags + b"\x00\x01" + (b"\x00\x01" if is_a else b"\x00\x00") + b"\x00\x00\x00\x00"
    out = head + query[12:end]
    if is_a:
        out += b"\xc0\x0c\x00\x01\x00\x01" + _TTL.to_bytes(4, "big") + b"\x00\x04" + bytes(ip)
    return out


def ip_bytes(text):
    return bytes(int(p) for p in text.split("."))


class CaptiveDNS:
    def __init__(self, ip="192.168.4.1", host="0.0.0.0", port=53):
        self.ip = ip_bytes(ip)
        self.addr = (host, port)
        self._sock = None

    def open(self):
        """Bind now, so queries are not lost before run() gets scheduled."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(socket.getaddrinfo(self.addr[0], self.addr[1])[0][-1])
        s.setblocking(False)
        self._sock = s
        log.info(_TAG, "captive DNS on %s:%d -> %s" % (self.addr[0], self.addr[1],
                                                       ".".join(str(b) for b in self.ip)))
        return self

    async def run(self):
        if self._sock is None:
            self.open()
        s = self._sock
        try:
            while True:
                try:
                    data, peer = s.recvfrom(512)
                except OSError:
                    await asyncio.sleep(_POLL_S)
                    continue
                reply = answer(data, self.ip)
                if reply:
                    try:
                        s.sendto(reply, peer)
                    except OSError:
                        pass
        finally:
            s.close()
            self._sock = None
