# The prompt files: their names, where they live and their header. Shared by
# the device's player (firmware/prompts.py) and the host's build step
# (tools/dev/prompts.py), so it imports nothing that needs MicroPython.
#
# Layout: prompts/<lang>/<name>.xzp, where <lang> is "en" or "zh-CN" (from the
# language config key), and prompts/<name>.xzp for sounds without words (the
# earcon). A file is a 16-byte header and then fixed-size packets:
#   0  b"XZP1"
#   4  u8 format (0 pcm, 1 adpcm)   5  u8 frame_ms
#   6  u16 sample rate              8  u16 packet bytes
#   10 u16 frames                   12 u32 reserved (0)
# all little-endian. Fixed-size packets let the player readinto() one
# preallocated buffer per frame: no allocation while a prompt plays.
import struct

MAGIC = b"XZP1"
HEADER = 16
FORMATS = ("pcm", "adpcm")
ROOT = "prompts"
EXT = ".xzp"
# What the device can say. ERR_* name the step that failed.
CONNECTING = "connecting"
ERR_WIFI = "err_wifi"
ERR_OTA = "err_ota"
ERR_SERVER = "err_server"
WIFI_LOST = "wifi_lost"
WIFI_SETUP = "wifi_setup"
ACTIVATION = "activation"  # "activation code", before the digits
DIGITS = tuple("digit_%d" % d for d in range(10))
LISTEN = "listen"  # the earcon: no words, no language
NAMES = (CONNECTING, ERR_WIFI, ERR_OTA, ERR_SERVER, WIFI_LOST, WIFI_SETUP, ACTIVATION) + DIGITS


def language_dir(language):
    """The prompt folder for a language config value: zh* -> zh-CN, else en."""
    return "zh-CN" if str(language).lower().startswith("zh") else "en"


def path(name, language, root=ROOT):
    if name == LISTEN:
        return "%s/%s%s" % (root, name, EXT)
    return "%s/%s/%s%s" % (root, language_dir(language), name, EXT)


def pack_header(fmt, frame_ms, rate, packet, frames):
    return MAGIC + struct.pack("<BBHHHI", FORMATS.index(fmt), frame_ms, rate, packet, frames, 0)


def parse_header(head):
    """-> (fmt, frame_ms, rate, packet, frames); ValueError naming what is wrong."""
    if len(head) < HEADER or bytes(head[:4]) != MAGIC:
        raise ValueError("not a prompt file (no XZP1 header)")
    f, frame_ms, rate, packet, frames, _ = struct.unpack("<BBHHHI", bytes(head[4:HEADER]))
    if f >= len(FORMATS):
        raise ValueError("unknown prompt format %d" % f)
    return FORMATS[f], frame_ms, rate, packet, frames
