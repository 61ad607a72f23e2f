# What the display draws for each emotion (firmware/status.py EMOTIONS): an
# eye shape and a mouth shape, and the short status word for each state on its
# top line. Pure tables, tested under both runtimes
# (host_tests/upy/test_indicator.py); loaded only on a device with a display
# (firmware/display.py draws them).

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


# Short ASCII status on the display's top line (the built-in font is ASCII only).
_STATUS = {
    "starting": "Starting", "wifi_configuring": "Wi-Fi setup", "activating": "Activating",
    "activation": "Code", "upgrading": "Upgrading", "idle": "Ready", "connecting": "Connecting",
    "listening": "Listening", "speaking": "Speaking", "error": "Error", "fatal_error": "Error",
}


def status(state):
    return _STATUS.get(state, state)
