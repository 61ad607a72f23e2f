# Shared by the ESP32-model tests: the real HAL on the real board profile.
from firmware.boards import bread_compact_s3 as board
from firmware.hal import esp32 as esp32hal
from tools.esp32_model import world as _world


def world():
    return _world.world


def hal():
    return esp32hal.Hal(board)


def tone(ms, rate=16000, amp=8000):
    """A square wave of ms, as s16le bytes: loud from its first sample."""
    n = rate * ms // 1000
    out = bytearray(2 * n)
    for i in range(n):
        v = amp if (i // 8) & 1 else -amp
        out[2 * i] = v & 0xFF
        out[2 * i + 1] = (v >> 8) & 0xFF
    return bytes(out)


def peak(pcm_s16):
    """Largest absolute sample of an s16le buffer."""
    m = 0
    for i in range(0, len(pcm_s16), 2):
        v = pcm_s16[i] | (pcm_s16[i + 1] << 8)
        v = v - 65536 if v & 0x8000 else v
        m = max(m, abs(v))
    return m
