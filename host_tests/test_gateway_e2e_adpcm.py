"""End to end with audio_format "adpcm": the real firmware under micropython
(tools.sim --mpy: the deploy build) → a byte-counting TCP relay → the gateway → the mock server in its
stock-like Opus mode. The same mic file is spoken once as pcm and once as
adpcm: the server hears the same thing, the reply plays non-silent, and the
device<->gateway link carries at least 3.5x fewer bytes with adpcm."""

import asyncio
import contextlib
import math

from gateway_fakes import SPEECH_WAV
from test_gateway_e2e import _stack, first_sentence, goertzel, sim

from tools.common.wav import read_wav
from tools.mock_server.audio import TONES, rms_dbfs


class ByteCounter:
    """A TCP relay on 127.0.0.1 that forwards to `port` and counts the bytes
    each way: what the device and the gateway really put on the wire."""

    def __init__(self, port):
        self.target = port
        self.up = 0  # device -> gateway
        self.down = 0  # gateway -> device
        self._server = None
        self._tasks = set()

    async def start(self):
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _conn(self, dr, dw):
        gr, gw = await asyncio.open_connection("127.0.0.1", self.target)
        a = asyncio.create_task(self._pipe(dr, gw, "up"))
        b = asyncio.create_task(self._pipe(gr, dw, "down"))
        self._tasks |= {a, b}
        await asyncio.gather(a, b, return_exceptions=True)
        self._tasks -= {a, b}

    async def _pipe(self, r, w, way):
        try:
            while data := await r.read(65536):
                setattr(self, way, getattr(self, way) + len(data))
                w.write(data)
                await w.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                w.close()


async def _turn(tmp_path, fmt):
    async with _stack() as (mock, gw, _url):
        relay = await ByteCounter(gw.port).start()
        try:
            out = tmp_path / f"reply_{fmt}.wav"
            # Auto mode: the server's VAD ends the utterance, so the frames it hears depend on the
            # mic file alone, not on how long a loaded host held the button. --mpy: the deploy build.
            code, so, se = await sim("ws://127.0.0.1:%d/xiaozhi/v1/" % relay.port, out, "--mode", "auto", "--mpy",
                                     "--set", f'audio_format="{fmt}"')
            assert code == 0, so + se
        finally:
            await relay.stop()
        hello = gw.audit.find("hello")
        assert [h["format"] for h in hello] == [fmt]
        end = gw.audit.find("session_end")[0]
        assert end["bad_packets"] == 0
        # The gateway's hello said "paced", so the device's jitter ring is 8 frames deep, not 19
        # (firmware/audio_path.py): the pacing must keep every frame in it.
        turn = mock.sessions[0].turns[0]
        got = [ln.split() for ln in so.splitlines() if "<-     hello " in ln]
        assert len(got) == 1 and "format=" + fmt in got[0] and "paced=True" in got[0], so  # so the shallow ring
        received = "audio  received %d frames, dropped 0, " % turn.audio_frames
        assert received in so, so
        return turn, relay.up + relay.down, out


def test_adpcm_turn_hears_the_same_plays_the_reply_and_is_lighter(tmp_path):
    async def main():
        pcm_turn, pcm_bytes, _ = await _turn(tmp_path, "pcm")
        adpcm_turn, adpcm_bytes, reply = await _turn(tmp_path, "adpcm")
        print(f"\non the wire per turn: pcm {pcm_bytes} B, adpcm {adpcm_bytes} B, "
              f"{pcm_bytes / adpcm_bytes:.2f}x; uplink level pcm {pcm_turn.level_db:.2f} dBFS, "
              f"adpcm {adpcm_turn.level_db:.2f} dBFS")
        # The stock-like server's ASR got the same speech: same frames, same transcript,
        # and the ADPCM uplink's level is within 1 dB of the PCM one.
        assert adpcm_turn.frames == pcm_turn.frames >= 30
        assert abs(adpcm_turn.level_db - pcm_turn.level_db) < 1.0
        assert adpcm_turn.stt == pcm_turn.stt and adpcm_turn.stt.startswith("heard ")
        _, _, mic = read_wav(SPEECH_WAV)
        assert abs(adpcm_turn.level_db - rms_dbfs(mic[:adpcm_turn.bytes])) < 1.0
        # The same reply, played non-silent, its first sentence still the mock's first tone.
        assert adpcm_turn.audio_frames == pcm_turn.audio_frames > 10
        rate, _, played = read_wav(str(reply))
        assert rms_dbfs(played) > -40 and not math.isinf(rms_dbfs(played))
        seg = first_sentence(played, rate)
        powers = {f: goertzel(seg, rate, f) for f in (TONES[0], TONES[1], TONES[2], 1000.0)}
        assert max(powers, key=powers.get) == TONES[0], powers
        assert pcm_bytes >= 3.5 * adpcm_bytes, (pcm_bytes, adpcm_bytes)

    asyncio.run(main())
