# The display's face for each emotion (firmware/indicator.py EMOTIONS), as an
# eye shape and a mouth shape that firmware/display.py draws. Pure tables,
# tested under both runtimes (host_tests/upy/test_indicator.py); loaded only
# on a device with a display.

EYES = ("dot", "arc", "line", "ring", "wink", "heart", "tear", "angry", "shades", "half", "odd", "look")
MOUTHS = ("flat", "smile", "grin", "frown", "o", "tongue", "kiss", "wavy", "smirk", "open")

_FACES = {
    "neutral": ("dot", "flat"),
    "happy": ("dot", "smile"),
    "laughing": ("arc", "grin"),
    "funny": ("wink", "grin"),
    "sad": ("dot", "frown"),
    "angry": ("angry", "frown"),
    "crying": ("tear", "frown"),
    "loving": ("heart", "smile"),
    "embarrassed": ("line", "wavy"),
    "surprised": ("ring", "o"),
    "shocked": ("ring", "open"),
    "thinking": ("look", "flat"),
    "winking": ("wink", "smile"),
    "cool": ("shades", "smirk"),
    "relaxed": ("arc", "smile"),
    "delicious": ("arc", "tongue"),
    "kissy": ("line", "kiss"),
    "confident": ("half", "smirk"),
    "sleepy": ("half", "o"),
    "silly": ("odd", "tongue"),
    "confused": ("odd", "wavy"),
}


def face(emotion):
    """(eyes, mouth) for an emotion name; neutral for anything unknown."""
    return _FACES.get(emotion) or _FACES["neutral"]
