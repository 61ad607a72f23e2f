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


class _NoRoom:
    class Player:
        def __init__(self, *args):
            raise MemoryError("memory allocation failed, allocating 335 bytes")


class CountingWake:
    def __init__(self):
        self.sets = 0

    def set(self):
        self.sets += 1


def test_a_prompt_without_room_is_skipped_not_raised():
    # The channel task says "cannot reach the server" when its open fails
    # for lack of memory; the prompt must not take the task down with it.
    wake = CountingWake()
    v = voice.Voice(BareHal(), "en", 16000, wake)
    kept = sys.modules.get("firmware.prompts")
    sys.modules["firmware.prompts"] = _NoRoom
    try:
        v.failed("server", "No server")
    finally:
        if kept is None:
            del sys.modules["firmware.prompts"]
        else:
            sys.modules["firmware.prompts"] = kept
    assert v.player is None and wake.sets == 0
    assert v.state == "error"


class _FullPlayer:
    def say(self, *names):
        raise MemoryError("memory allocation failed, allocating 64 bytes")


def test_a_prompt_without_room_leaves_the_one_playing_alone():
    wake = CountingWake()
    v = voice.Voice(BareHal(), "en", 16000, wake)
    playing = v.player = _FullPlayer()
    v.say("err_server")
    assert v.player is playing and wake.sets == 0
