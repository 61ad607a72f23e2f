# The status LED: the device state mapped to a colour and a pattern.
# Pure tables, tested under both runtimes (host_tests/upy/test_indicator.py);
# loaded by firmware/status.py only on a board with a status LED.
#
# The patterns follow the reference's single-LED behaviour: blue while
# starting/connecting, red while listening, green while speaking (tinted by
# the reply's emotion on an RGB LED), fast red blinking on an error, slow
# green blinking while an activation code waits to be entered.

# Shown states: the device states (firmware/state.py names) plus "activation"
# and "error" (after a failed open or a lost network, until the next press).
SOLID = "solid"
BLINK_SLOW = "blink_slow"  # 500 ms on, 500 ms off
BLINK_FAST = "blink_fast"  # 100 ms on, 100 ms off
OFF = "off"
PERIOD_MS = {SOLID: 0, OFF: 0, BLINK_SLOW: 500, BLINK_FAST: 100}

_BLUE = (0, 0, 48)
_RED = (48, 0, 0)
_GREEN = (0, 48, 0)
_DIM = (0, 0, 0)

_STATE_LED = {
    "starting": (_BLUE, BLINK_FAST),
    "wifi_configuring": (_BLUE, BLINK_SLOW),
    "activating": (_GREEN, BLINK_SLOW),
    "activation": (_GREEN, BLINK_SLOW),
    "upgrading": (_GREEN, BLINK_FAST),
    "idle": (_DIM, OFF),
    "connecting": (_BLUE, SOLID),
    "listening": (_RED, SOLID),
    "speaking": (_GREEN, SOLID),
    "error": (_RED, BLINK_FAST),
    "fatal_error": (_RED, BLINK_FAST),
}

# Speaking colour by emotion on an RGB LED: warm for joy, blue for sorrow,
# red for anger, pink for affection, violet for wonder; the rest stay green.
# As 0xRRGGBB ints: as tuples they would be 20 more constant objects, which
# stay resident with the module (1.3 KB on x64).
_EMOTION_RGB = {
    "happy": 0x282000, "laughing": 0x302400, "funny": 0x301800, "relaxed": 0x182808,
    "delicious": 0x301400, "confident": 0x282008, "silly": 0x281018,
    "sad": 0x000830, "crying": 0x000030, "sleepy": 0x040418,
    "angry": 0x300000,
    "loving": 0x300414, "kissy": 0x300818, "embarrassed": 0x300C0C,
    "surprised": 0x180030, "shocked": 0x200030, "confused": 0x100828, "thinking": 0x081028,
    "winking": 0x182800, "cool": 0x002028,
}


def led(state, emotion=None, rgb=True):
    """-> (colour (r, g, b), pattern) for a display state. While speaking an RGB
    LED takes the emotion's colour. A plain LED (rgb=False) gets (1, 1, 1) for
    lit, (0, 0, 0) for off: it can show only on, off and blinking."""
    colour, pattern = _STATE_LED.get(state, (_DIM, OFF))
    if rgb and state == "speaking" and emotion in _EMOTION_RGB:
        c = _EMOTION_RGB[emotion]
        colour = (c >> 16, (c >> 8) & 0xFF, c & 0xFF)
    if not rgb:
        colour = (0, 0, 0) if pattern == OFF else (1, 1, 1)
    return colour, pattern


def lit(pattern, ms):
    """Whether a pattern's LED is on at time ms (any monotonic clock)."""
    if pattern == OFF:
        return False
    period = PERIOD_MS[pattern]
    return not period or (ms // period) % 2 == 0
