"""What a push-to-talk turn on the sim board holds mid-reply, through the
gateway to the Opus mock: only the code for its own codec and its own
hardware. The sim board has no status LED and no display, so none of the
status, LED or face code loads; an adpcm device never loads the pcm codec
(and the other way round); the pure-Python loops are for CPython only; the
level meter is the voice detector's and the I2S conversion the ESP32 HAL's."""

import json
import os

import pytest

from tools import sim
from tools.bench import heap

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "turn_modules.py")
NEVER = ("firmware.status", "firmware.indicator", "firmware.display", "firmware.faces", "firmware.dsp_ref",
         "firmware.adpcm_ref", "firmware.level", "firmware.hal.i2s_slots", "firmware.hal.pcm_pipe")


@pytest.fixture(scope="module")
def stack():
    with heap.Stack() as s:
        yield s


@pytest.mark.parametrize("fmt, other", [("adpcm", "firmware.pcm"), ("pcm", "firmware.adpcm")])
def test_a_turn_holds_only_its_own_codec_and_hardware(stack, fmt, other):
    ok, why, lines = heap.turn(stack.url, fmt, 512 * 1024, sim.ROOT, script=SCRIPT)
    assert ok, why
    found = [json.loads(ln[len("MODULES "):]) for ln in lines if ln.startswith("MODULES ")]
    assert len(found) == 1, lines[-20:]
    mods = found[0]
    assert "firmware." + fmt in mods and "firmware.dsp" in mods and "firmware.voice" in mods, mods
    assert [m for m in NEVER + (other,) if m in mods] == []
