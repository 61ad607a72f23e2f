# lib/hmac_hashlib: RFC 4231 / RFC 2202 vectors, the update() path, compare_digest.
import binascii

import hmac_hashlib


def _hex(b):
    return binascii.hexlify(b).decode()


def test_rfc4231_case1():
    h = hmac_hashlib.new(b"\x0b" * 20, b"Hi There", "sha256")
    assert h.hexdigest() == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"


def test_rfc4231_case2_default_digest_is_sha256():
    d = hmac_hashlib.digest(b"Jefe", b"what do ya want for nothing?")
    assert _hex(d) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_rfc4231_case6_key_longer_than_block():
    d = hmac_hashlib.new(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First").digest()
    assert _hex(d) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_rfc2202_sha1():
    import hashlib

    d = hmac_hashlib.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha1).digest()
    assert _hex(d) == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"


def test_update_in_pieces_matches_one_shot():
    one = hmac_hashlib.new(b"k", b"abcdef").digest()
    h = hmac_hashlib.new(b"k")
    h.update(b"ab")
    h.update(b"cd")
    h.update(b"ef")
    assert h.digest() == one


def test_digest_twice_is_refused():
    h = hmac_hashlib.new(b"k", b"x")
    h.digest()
    try:
        h.digest()
    except ValueError:
        return
    assert False, "second digest() must raise"


def test_str_key_is_refused():
    try:
        hmac_hashlib.new("text", b"x")
    except TypeError:
        return
    assert False


def test_unknown_digest_is_refused():
    try:
        hmac_hashlib.new(b"k", b"x", "sha999")
    except ValueError:
        return
    assert False


def test_compare_digest():
    assert hmac_hashlib.compare_digest(b"abc", b"abc")
    assert not hmac_hashlib.compare_digest(b"abc", b"abd")
    assert not hmac_hashlib.compare_digest(b"abc", b"ab")
    assert not hmac_hashlib.compare_digest(b"", b"a")
    assert hmac_hashlib.compare_digest("tok", "tok")
    assert hmac_hashlib.compare_digest(b"", b"")
