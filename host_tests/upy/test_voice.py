# firmware/voice.py on a board with neither a status LED nor a display (the
# sim board): nothing of the status code loads, and what the Device tells the
# voice still works. Under MicroPython and CPython.
import sys

from firmware import voice

_SHOWING = ("firmware.status", "firmware.indicator", "firmware.display", "firmware.faces")


class BareHal:
    has_led = False
    display = None


class Wake:
    def set(self):
        pass


def test_a_board_that_shows_nothing_loads_no_status_code():
    v = voice.Voice(BareHal(), "en", 24000, Wake())
    assert v.status is None
    v.show("listening")
    v.emotion("happy")
    assert v.state == "listening"
    v.error("No server")
    assert v.state == "error"
    v.show("idle")
    assert v.state == "idle"
    v.start()
    assert [m for m in _SHOWING if m in sys.modules] == []
