"""Rate limits (trip and recover) and the blocked-word filter, unit and over sockets."""

import asyncio
import json

import pytest
import websockets
from gateway_fakes import (
    DEV,
    FakeClock,
    FakeUpstream,
    T,
    async_test,
    closed_with,
    gateway_for,
    open_device,
    open_session,
    recv_until,
)

from tools.gateway.config import Limits
from tools.gateway.policy import BlockedWords, RateLimits, WindowCounter


def test_window_counter_trips_and_recovers():
    clk = FakeClock(1000.0)
    c = WindowCounter(3, 60.0, clk)
    for _ in range(3):
        assert not c.would_exceed("k")
        c.add("k")
    assert c.would_exceed("k")
    assert not c.would_exceed("other")
    clk.t += 59.9
    assert c.would_exceed("k")
    clk.t += 0.2
    assert not c.would_exceed("k")
    assert c.key_count() == 0  # aged-out keys are forgotten


def test_zero_limit_is_off():
    c = WindowCounter(0, 1.0, FakeClock(1000.0))
    assert not any(c.hit("k") for _ in range(1000))


def test_rate_limits_name_the_limit():
    clk = FakeClock(1000.0)
    r = RateLimits(Limits(2, 3, 2, 3), clk)
    assert r.admit("1.1.1.1", "d1") is None
    assert r.admit("1.1.1.1", "d1") is None
    assert r.admit("1.1.1.1", "d1") == "connections per minute per device (2)"
    assert r.admit("1.1.1.1", "d2") is None
    assert r.admit("1.1.1.1", "d3") == "connections per minute per IP (3)"
    assert r.message("1.1.1.1", "d1") is None
    assert r.message("1.1.1.1", "d1") is None
    assert r.message("1.1.1.1", "d1") == "messages per second per device (2)"
    assert r.message("1.1.1.1", "d2") == "messages per second per IP (3)"
    clk.t += 1.01
    assert r.message("1.1.1.1", "d1") is None


def test_blocked_words():
    b = BlockedWords(["Secret Plan", "bomb"])
    assert b.find("tell me the SECRET plan now") == "secret plan"
    assert b.find("hello") is None
    assert b.find(None) is None
    assert BlockedWords([]).find("bomb") is None


@async_test
async def test_connection_rate_limit_trips_and_recovers_over_sockets():
    clk = FakeClock(1000.0)
    async with gateway_for(None, mono=clk, limits=Limits(2, 100, 100, 100)) as (up, gw):
        for _ in range(2):
            ws, _ = await open_session(gw)
            await ws.close()
        ws = await open_device(gw)
        assert await closed_with(ws) == (4429, "rate limit: connections per minute per device (2)")
        assert gw.audit.find("close", code=4429)
        clk.t += 61  # a minute later the device is let in again
        ws, sh = await open_session(gw)
        assert sh["type"] == "hello"
        await ws.close()


@async_test
async def test_message_rate_limit_closes_session_and_upstream():
    clk = FakeClock(1000.0)
    async with gateway_for(None, mono=clk, limits=Limits(100, 100, 5, 100)) as (up, gw):
        ws, _ = await open_session(gw)
        with pytest.raises(websockets.ConnectionClosed):
            for _ in range(10):
                await ws.send(b"\x00" * 1920)
            await asyncio.wait_for(ws.recv(), T)
        assert ws.close_code == 4429
        assert ws.close_reason == "rate limit: messages per second per device (5)"
        await asyncio.wait_for(up.closed.wait(), T)
        assert up.connections[0]["close"][0] == 1000
        assert len(up.connections[0]["binary"]) == 4  # hello + 4 frames = the 5 allowed
        close = gw.audit.find("close", device=DEV)[0]
        assert close["side"] == "policy" and close["code"] == 4429
        # Recovery: within the connect limit, a new session works once the second has passed.
        clk.t += 1.5
        ws, sh = await open_session(gw)
        assert sh["type"] == "hello"
        await ws.close()


@async_test
async def test_blocked_word_aborts_turn_and_alerts_device():
    up = FakeUpstream()
    up.stt_text = "tell me the SECRET plan"
    async with gateway_for(up, blocked_words=["secret plan"], blocked_alert="Not allowed.") as (up, gw):
        ws, _ = await open_session(gw)
        await ws.send('{"session_id":"S-1","type":"listen","state":"stop"}')
        texts, audio, sizes = await recv_until(ws, lambda m: m.get("type") == "tts" and m.get("state") == "stop")
        msgs = [json.loads(t) for t in texts]
        assert msgs[0] == {"session_id": "S-1", "type": "alert", "status": "blocked", "message": "Not allowed.",
                           "emotion": "sad"}
        assert not any(m["type"] == "stt" for m in msgs)  # the blocked text is not shown
        assert not any(m["type"] == "llm" or m.get("state") == "sentence_start" for m in msgs)
        assert audio == b""  # the aborted reply is not played
        abort = [json.loads(t) for t in up.connections[0]["text"] if '"abort"' in t]
        assert abort == [{"session_id": "S-1", "type": "abort", "reason": "blocked_word"}]
        assert gw.audit.find("blocked", word="secret plan")
        # The next turn is normal again.
        up.stt_text = "what time is it"
        await ws.send('{"session_id":"S-1","type":"listen","state":"stop"}')
        # (the upstream's late "tts stop" for the abort may come first, as on stock)
        texts, _, _ = await recv_until(ws, lambda m: m.get("type") == "stt")
        assert json.loads(texts[-1])["text"] == "what time is it"
        texts, audio, sizes = await recv_until(ws, lambda m: m.get("type") == "tts" and m.get("state") == "stop")
        assert len(sizes) == up.tts_frames + up.prompt_frames
        await ws.close()
