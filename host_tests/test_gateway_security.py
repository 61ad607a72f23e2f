"""The gateway attacked as the issue probed it: a spoofed Device-Id locking the
real device out, a newline in device-id forging a log line, a Unicode digit in
the token timestamp crashing the handler, a flood whose close came 10 s late,
and refusal reasons that told unknown devices from bad signatures."""

import asyncio
import logging
import time
import urllib.parse

from gateway_fakes import CID, DEV, T, async_test, closed_with, gateway_for, open_device, open_session
from websockets.asyncio.client import connect

from tools.common import tokens
from tools.common.tokens import sign
from tools.gateway import metrics
from tools.gateway.config import Auth, Limits

SECRET = "peer-test-secret"
VICTIM_HEADERS = {"Device-Id": DEV, "Client-Id": CID, "Protocol-Version": "1"}


def _auth():
    return Auth(enabled=True, window_s=300, devices={DEV: SECRET})


async def _open_from(gw, source_ip, headers=None, query=""):
    """A device WebSocket whose TCP connection comes from source_ip (any 127.x address is loopback)."""
    return await connect("ws://127.0.0.1:%d/xiaozhi/v1/%s" % (gw.port, query), additional_headers=headers,
                         open_timeout=T, compression=None, local_addr=(source_ip, 0))


def test_parse_accepts_ascii_digits_only_and_bounded_lengths():
    sig = sign(SECRET, CID, DEV, 1795784743).split(".")[0]
    assert tokens.parse(f"{sig}.1795784743") == 1795784743
    assert tokens.parse(f"{sig}.\u00b2") is None  # '²'.isdigit() is True, int('²') raises
    assert tokens.parse(f"{sig}.\u0661\u0662") is None  # Arabic-Indic digits, which int() would take
    assert tokens.parse(f"{sig}.{'1' * 13}") is None
    assert tokens.parse(f"{sig}.") is None
    assert tokens.parse(f"{sig}x.1") is None and tokens.parse(f"{sig[:-1]}.1") is None
    assert tokens.parse(f"{sig[:-1]}+.1") is None  # not base64url
    assert tokens.parse("no-dot") is None and tokens.parse(None) is None


@async_test
async def test_forged_connects_with_a_victims_id_do_not_lock_it_out():
    limits = Limits(connections_per_minute_per_device=10, connections_per_minute_per_ip=15)
    async with gateway_for(None, auth=_auth(), limits=limits) as (up, gw):
        before = metrics.AUTH_REFUSALS.value(reason="bad signature")
        forged = dict(VICTIM_HEADERS, Authorization="Bearer " + sign("guessed-secret", CID, DEV, int(gw.clock())))
        for _ in range(12):  # more than the per-device limit, from the attacker's address
            assert await closed_with(await _open_from(gw, "127.0.0.2", forged)) == (4401, "auth failed")
        assert metrics.AUTH_REFUSALS.value(reason="bad signature") - before == 12
        # The real device, from its own address, is let in at once.
        good = dict(VICTIM_HEADERS, Authorization="Bearer " + sign(SECRET, CID, DEV, int(gw.clock())))
        ws = await _open_from(gw, "127.0.0.1", good)
        await ws.send('{"type":"hello","version":1,"audio_params":{"format":"pcm","sample_rate":16000,'
                      '"channels":1,"frame_duration":60}}')
        assert '"hello"' in await asyncio.wait_for(ws.recv(), T)
        await ws.close()
        # The failures counted against the attacker's address: three more and it is rate limited.
        for _ in range(3):
            assert (await closed_with(await _open_from(gw, "127.0.0.2", forged)))[0] == 4401
        code, reason = await closed_with(await _open_from(gw, "127.0.0.2", forged))
        assert (code, reason) == (4429, "rate limit: connections per minute per IP (15)")
        assert len(up.connections) == 1


@async_test
async def test_newline_in_device_id_cannot_forge_a_log_line(caplog):
    caplog.set_level(logging.INFO)
    forged = "aa\n2026-12-02 06:00:00,000 I gateway: admin logged in from 10.0.0.1"
    async with gateway_for(None) as (up, gw):
        ws = await _open_from(gw, "127.0.0.1", {"Client-Id": CID}, "?device-id=" + urllib.parse.quote(forged))
        code, reason = await closed_with(ws)
        assert code == 4400 and reason.startswith("bad Device-Id")
        # A device id the gateway accepts, with a close reason that carries a newline.
        ws, _ = await open_session(gw)
        await ws.close(1000, "bye\nI gateway: forged close")
        await asyncio.wait_for(up.closed.wait(), T)
    gateway_lines = [r.getMessage() for r in caplog.records if r.name.startswith("gateway")]
    assert any("admin logged in" in m for m in gateway_lines)  # logged, but escaped ...
    assert any("bye\\nI gateway: forged close" in m for m in gateway_lines)
    for m in gateway_lines:
        assert "\n" not in m and "\r" not in m, m  # ... and every record is one line


@async_test
async def test_unicode_digit_in_token_timestamp_is_refused_not_a_crash(caplog):
    caplog.set_level(logging.INFO)
    sig = sign(SECRET, CID, DEV, 1795784743).split(".")[0]
    async with gateway_for(None, auth=_auth()) as (up, gw):
        query = "?device-id=%s&client-id=%s&authorization=Bearer%%20%s.%%C2%%B2" % (DEV, CID, sig)
        ws = await _open_from(gw, "127.0.0.1", {}, query)
        assert await closed_with(ws) == (4401, "auth failed")
        assert gw.audit.find("auth")[-1]["reason"] == "malformed token"
        # The gateway still serves the real device.
        good = dict(VICTIM_HEADERS, Authorization="Bearer " + sign(SECRET, CID, DEV, int(gw.clock())))
        ws, sh = await open_session(gw, headers=good)
        assert sh["type"] == "hello"
        await ws.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "the handler logged an error"


@async_test
async def test_flooding_client_sees_the_close_at_once_not_after_close_timeout():
    hits = metrics.RATE_LIMIT_HITS.value(limit="messages per second per device")
    async with gateway_for(None, limits=Limits(messages_per_second_per_device=20)) as (up, gw):
        ws, _ = await open_session(gw)
        for _ in range(2000):  # far past the limit, faster than the gateway reads
            await ws.send(bytes(1920))
        t0 = time.monotonic()
        try:
            # Bounded below the gateway's 10 s close_timeout, which the close used to wait out.
            await asyncio.wait_for(ws.wait_closed(), 5)
        except TimeoutError:
            raise AssertionError(f"no close {time.monotonic() - t0:.1f} s after the flood") from None
        assert (ws.close_code, ws.close_reason) == (4429, "rate limit: messages per second per device (20)")
    assert metrics.RATE_LIMIT_HITS.value(limit="messages per second per device") - hits == 1


@async_test
async def test_refusal_does_not_tell_unknown_device_from_bad_signature():
    async with gateway_for(None, auth=_auth()) as (up, gw):
        now = int(gw.clock())
        other = "11:22:33:44:55:66"
        unknown = {"Device-Id": other, "Client-Id": CID,
                   "Authorization": "Bearer " + sign("any-secret-123", CID, other, now)}
        bad_sig = dict(VICTIM_HEADERS, Authorization="Bearer " + sign("any-secret-123", CID, DEV, now))
        a = await closed_with(await open_device(gw, headers=unknown))
        b = await closed_with(await open_device(gw, headers=bad_sig))
        assert a == b == (4401, "auth failed")
        # The operator still gets the precise reason.
        assert [r["reason"] for r in gw.audit.find("auth")] == ["unknown device", "bad signature"]
        assert [r["detail"] for r in gw.audit.find("close", code=4401)] == ["unknown device", "bad signature"]


@async_test
async def test_overlong_or_control_character_ids_are_refused():
    async with gateway_for(None) as (up, gw):
        for query in ("?device-id=" + "a" * 129, "?device-id=%s&client-id=x%%1B[31m" % DEV):
            code, reason = await closed_with(await _open_from(gw, "127.0.0.1", {}, query))
            assert code == 4400 and reason.startswith("bad Device-Id or Client-Id"), query
        assert up.connections == []
