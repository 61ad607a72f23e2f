# firmware/auth: the stock server's token test vector, fresh tokens per ts,
# the clock checks and clear errors.
import hmac_hashlib
from firmware import auth, clock

_KEY = "peer-test-secret"
_CID = "5f1c7c52-5d0f-4c1e-9d2a-3c1b2a4f6e70"
_DID = "aa:bb:cc:dd:ee:ff"


def test_stock_server_vector():
    tok = auth.mint_token(_KEY, _CID, _DID, 1795784743)
    assert tok == "C038gKFvHKgGMKpofPx4JagVqNqZB9Gbs5HNZaB_Kng.1795784743", tok


def test_bytes_secret_same_as_str():
    assert auth.mint_token(_KEY.encode(), _CID, _DID, 1795784743) == auth.mint_token(_KEY, _CID, _DID, 1795784743)


def test_token_is_base64url_without_padding():
    for ts in range(1795784700, 1795784740):
        sig, t = auth.mint_token(_KEY, _CID, _DID, ts).split(".")
        assert t == str(ts)
        assert len(sig) == 43  # 32 bytes, no '=' padding
        for ch in sig:
            assert ch not in "+/=", sig


def test_signature_matches_hmac_of_the_message():
    import binascii

    sig = auth.mint_token(_KEY, _CID, _DID, 1700000000).split(".")[0]
    raw = hmac_hashlib.new(_KEY.encode(), (_CID + "|" + _DID + "|1700000000").encode()).digest()
    pad = "=" * (-len(sig) % 4)
    assert binascii.a2b_base64(sig.replace("-", "+").replace("_", "/") + pad) == raw


def test_every_input_changes_the_token():
    base = auth.mint_token(_KEY, _CID, _DID, 1795784743)
    assert auth.mint_token(_KEY + "x", _CID, _DID, 1795784743) != base
    assert auth.mint_token(_KEY, _CID[:-1] + "1", _DID, 1795784743) != base
    assert auth.mint_token(_KEY, _CID, "aa:bb:cc:dd:ee:00", 1795784743) != base
    assert auth.mint_token(_KEY, _CID, _DID, 1795784744).split(".")[0] != base.split(".")[0]


def test_empty_secret_is_an_error():
    try:
        auth.mint_token("", _CID, _DID, 1)
    except ValueError as e:
        assert "secret" in str(e)
        return
    assert False


def test_clock_ok_and_token_ts_follow_the_clock():
    import time

    assert auth.clock_ok(clock.unix_time())  # the host clock is set
    assert not auth.clock_ok(0)
    ts = auth.token_ts()
    # token_ts() may run a few seconds ahead after earlier tests minted tokens
    assert 0 <= ts - (int(time.time()) + clock.EPOCH_SHIFT) <= 10


def test_token_ts_never_repeats_so_quick_reconnects_get_fresh_tokens():
    a = auth.token_ts()
    b = auth.token_ts()
    c = auth.token_ts()
    assert a < b < c
    assert c - clock.unix_time() <= 3
    t1 = auth.mint_token(_KEY, _CID, _DID, auth.token_ts())
    t2 = auth.mint_token(_KEY, _CID, _DID, auth.token_ts())
    assert t1 != t2
