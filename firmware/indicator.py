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
_EMOTION_RGB = {
    "happy": (40, 32, 0), "laughing": (48, 36, 0), "funny": (48, 24, 0), "relaxed": (24, 40, 8),
    "delicious": (48, 20, 0), "confident": (40, 32, 8), "silly": (40, 16, 24),
    "sad": (0, 8, 48), "crying": (0, 0, 48), "sleepy": (4, 4, 24),
    "angry": (48, 0, 0),
    "loving": (48, 4, 20), "kissy": (48, 8, 24), "embarrassed": (48, 12, 12),
    "surprised": (24, 0, 48), "shocked": (32, 0, 48), "confused": (16, 8, 40), "thinking": (8, 16, 40),
    "winking": (24, 40, 0), "cool": (0, 32, 40),
}


def led(state, emotion=None, rgb=True):
    """-> (colour (r, g, b), pattern) for a display state. While speaking an RGB
    LED takes the emotion's colour. A plain LED (rgb=False) gets (1, 1, 1) for
    lit, (0, 0, 0) for off: it can show only on, off and blinking."""
    colour, pattern = _STATE_LED.get(state, (_DIM, OFF))
    if rgb and state == "speaking" and emotion in _EMOTION_RGB:
        colour = _EMOTION_RGB[emotion]
    if not rgb:
        colour = (0, 0, 0) if pattern == OFF else (1, 1, 1)
    return colour, pattern


def lit(pattern, ms):
    """Whether a pattern's LED is on at time ms (any monotonic clock)."""
    if pattern == OFF:
        return False
    period = PERIOD_MS[pattern]
    return not period or (ms // period) % 2 == 0
