# HMAC (RFC 2104) for MicroPython, on top of hashlib. A subset of CPython's
# hmac module: new(), digest(), compare_digest(), and objects with update(),
# digest() and hexdigest().
#
# MicroPython's hash objects have no copy(), and digest() finalises them, so
# an HMAC object keeps the inner hash running and builds the outer hash only
# in digest(); digest() may therefore be called once per object.
import hashlib

try:
    import binascii
except ImportError:  # pragma: no cover
    import ubinascii as binascii

_BLOCK = 64  # block size of md5, sha1 and sha256 (the hashes MicroPython has)
_IPAD = 0x36
_OPAD = 0x5C


def _ctor(digestmod):
    if digestmod is None:
        return hashlib.sha256
    if isinstance(digestmod, str):
        c = getattr(hashlib, digestmod.lower(), None)
        if c is None:
            raise ValueError("unsupported digest: " + digestmod)
        return c
    return digestmod


def _pad(key, byte):
    out = bytearray(_BLOCK)
    for i in range(len(key)):
        out[i] = key[i] ^ byte
    for i in range(len(key), _BLOCK):
        out[i] = byte
    return out


class HMAC:
    def __init__(self, key, msg=None, digestmod=None):
        if isinstance(key, str):
            raise TypeError("key must be bytes")
        self._h = _ctor(digestmod)
        if len(key) > _BLOCK:
            key = self._h(key).digest()
        self._okey = _pad(key, _OPAD)
        self._inner = self._h(_pad(key, _IPAD))
        self._done = False
        if msg is not None:
            self.update(msg)

    def update(self, msg):
        if self._done:
            raise ValueError("digest() already called")
        self._inner.update(msg)

    def digest(self):
        if self._done:
            raise ValueError("digest() already called")
        self._done = True
        outer = self._h(self._okey)
        outer.update(self._inner.digest())
        return outer.digest()

    def hexdigest(self):
        return binascii.hexlify(self.digest()).decode()


def new(key, msg=None, digestmod=None):
    return HMAC(key, msg, digestmod)


def digest(key, msg, digest=None):
    return HMAC(key, msg, digest).digest()


def compare_digest(a, b):
    """Equality in time that depends only on the lengths, not on where the
    inputs first differ, so a forger learns nothing from timing."""
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    diff = len(a) ^ len(b)
    if diff:
        b = a  # still walk a full input so the time does not reveal the mismatch early
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
