# The LED and the face follow the state, the emotion and errors (firmware/status.py),
# under MicroPython and CPython, with a HAL that records what the LED was set to.
import asyncio
import sys

from firmware import status

# The LED task runs on MicroPython's asyncio (sleep_ms, wait_for_ms); CPython checks the tables only.
ON_UPY = sys.implementation.name == "micropython"


async def until(cond, ms=3000):
    """Wait for the LED task to catch up (a loaded machine may be slow); True once cond() holds."""
    while ms > 0 and not cond():
        await asyncio.sleep_ms(10)
        ms -= 10
    return cond()


class RgbHal:
    has_led = True
    display = None

    def __init__(self):
        self.colours = []

    def led_colour(self, rgb):
        self.colours.append(tuple(rgb))


class PlainHal:
    has_led = True
    display = None

    def __init__(self):
        self.lit = []

    def led(self, on):
        self.lit.append(on)


def test_state_emotion_and_error_pick_colour_pattern_and_mood():
    s = status.Status(RgbHal())
    s.show("listening")
    assert (s.colour, s.pattern, s.mood) == ((48, 0, 0), "solid", "neutral")
    s.show("speaking")
    s.emotion("sad")
    assert (s.colour, s.mood) == ((0, 8, 48), "sad")
    s.emotion("no-such-feeling")
    assert s.mood == "neutral" and s.colour == (0, 48, 0)
    s.emotion("happy")
    s.show("idle")  # the reply is over: the emotion goes with it
    assert (s.mood, s.pattern) == ("neutral", "off")
    s.error("No server")
    assert (s.state, s.pattern, s.mood) == ("error", "blink_fast", "sad")
    s.show("idle")  # a failed open ends in idle: the error stays up
    assert s.state == "error"
    s.show("connecting")  # the next turn replaces it
    assert (s.state, s.mood, s.pattern) == ("connecting", "neutral", "solid")


async def test_led_task_blinks_and_the_error_times_out():
    if not ON_UPY:
        return
    hal = RgbHal()
    s = status.Status(hal)
    status.ERROR_SHOW_MS, saved = 350, status.ERROR_SHOW_MS
    try:
        s.start()
        s.error("No Wi-Fi")
        assert await until(lambda: (48, 0, 0) in hal.colours), hal.colours  # red ...
        assert await until(lambda: s.state == "idle"), s.state  # ... until the error's time is up
        assert s.pattern == "off" and await until(lambda: hal.colours[-1] == (0, 0, 0)), hal.colours
    finally:
        status.ERROR_SHOW_MS = saved


async def test_plain_led_is_on_off():
    if not ON_UPY:
        return
    hal = PlainHal()
    s = status.Status(hal)
    s.start()
    s.show("listening")
    assert await until(lambda: hal.lit and hal.lit[-1] is True), hal.lit
    s.show("idle")
    assert await until(lambda: hal.lit[-1] is False), hal.lit


class NoLedHal:
    """A board with a display but no status LED: Status must never drive one."""

    has_led = False
    display = None  # the display itself is tested through the simulator (test_voice_device.py)

    def __init__(self):
        self.lit = []

    def led(self, on):
        self.lit.append(on)


async def test_without_a_led_the_error_still_times_out():
    if not ON_UPY:
        return
    hal = NoLedHal()
    s = status.Status(hal)
    status.ERROR_SHOW_MS, saved = 350, status.ERROR_SHOW_MS
    try:
        s.start()
        s.error("No server")
        assert (s.state, s.mood, s.pattern) == ("error", "sad", "off")
        assert await until(lambda: s.state == "idle"), s.state
        assert s.mood == "neutral" and hal.lit == [], hal.lit
    finally:
        status.ERROR_SHOW_MS = saved
