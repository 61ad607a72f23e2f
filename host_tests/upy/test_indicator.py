# Emotion and state -> face, status word and LED, under MicroPython and CPython.
from firmware import faces, status
from firmware import indicator as ind


def test_every_reference_emotion_has_its_own_known_face():
    assert len(status.EMOTIONS) == 21
    seen = set()
    for e in status.EMOTIONS:
        eyes, mouth = faces.face(e)
        assert eyes in faces.EYES and mouth in faces.MOUTHS, e
        seen.add((eyes, mouth))
    assert len(seen) == 21, "two emotions share a face"


def test_unknown_or_missing_emotion_is_neutral():
    assert status.emotion_name("grumpy") == "neutral"
    assert status.emotion_name(None) == "neutral"
    assert status.emotion_name("happy") == "happy"
    assert faces.face("grumpy") == faces.face("neutral")


def test_state_led_table():
    table = (
        ("connecting", (0, 0, 48), ind.SOLID),
        ("listening", (48, 0, 0), ind.SOLID),
        ("speaking", (0, 48, 0), ind.SOLID),
        ("error", (48, 0, 0), ind.BLINK_FAST),
        ("activation", (0, 48, 0), ind.BLINK_SLOW),
        ("idle", (0, 0, 0), ind.OFF),
        ("no_such_state", (0, 0, 0), ind.OFF),
    )
    for state, colour, pattern in table:
        assert ind.led(state) == (colour, pattern), state


def test_speaking_takes_the_emotion_colour_on_rgb_only():
    assert ind.led("speaking", "sad")[0] == (0, 8, 48)
    assert ind.led("speaking", "angry")[0] == (48, 0, 0)
    assert ind.led("speaking", "neutral")[0] == (0, 48, 0)
    assert ind.led("listening", "sad")[0] == (48, 0, 0)  # only while speaking
    assert ind.led("speaking", "sad", rgb=False) == ((1, 1, 1), ind.SOLID)
    assert ind.led("idle", None, rgb=False) == ((0, 0, 0), ind.OFF)
    assert ind.led("error", None, rgb=False) == ((1, 1, 1), ind.BLINK_FAST)


def test_blink_patterns_over_time():
    assert [ind.lit(ind.BLINK_FAST, t) for t in (0, 99, 100, 199, 200)] == [True, True, False, False, True]
    assert [ind.lit(ind.BLINK_SLOW, t) for t in (0, 499, 500, 1000)] == [True, True, False, True]
    assert ind.lit(ind.SOLID, 12345) and not ind.lit(ind.OFF, 0)


def test_status_words_are_short_ascii():
    for state in ("starting", "idle", "connecting", "listening", "speaking", "error", "activation"):
        s = faces.status(state)
        assert 0 < len(s) <= 14 and all(32 <= ord(c) < 127 for c in s), s
