# The port's time module. Two facts the firmware must survive:
# - ticks_ms() wraps at 2**30 like on every port (MICROPY_PY_TIME_TICKS_PERIOD
#   in py/mpconfig.h; docs/library/time.rst: ticks_diff() is only meaningful
#   within +-2**29 ms, about 6.2 days). The model's ticks are the unix port's
#   own, because asyncio's C task queue (extmod/modasyncio.c) reads those
#   directly; advance() moves them on, for synchronous checks only (asyncio's
#   timers would then see two clocks).
# - time() and localtime() read the RTC, whose epoch is 2000-01-01 and which
#   starts at 2000-01-01 00:00 after power-on (ports/esp32/machine_rtc.c,
#   docs/library/time.rst "Epoch").
# advance(ms) moves the model's uptime on, as if the board had run that long.
import time as host

PERIOD = 1 << 30
_HALF = PERIOD >> 1
EPOCH_2000 = 946684800  # unix seconds at 2000-01-01
_boot_host = host.ticks_ms()
_skip_ms = 0  # uptime added by advance()
_rtc_base_s = 0  # RTC seconds since 2000 at _rtc_at_ms of uptime
_rtc_at_ms = 0


def _uptime_ms():
    return host.ticks_diff(host.ticks_ms(), _boot_host) + _skip_ms


def advance(ms):
    global _skip_ms
    _skip_ms += ms


def ticks_ms():
    return (host.ticks_ms() + _skip_ms) & (PERIOD - 1)


def ticks_us():
    return (host.ticks_us() + _skip_ms * 1000) & (PERIOD - 1)


def ticks_cpu():
    return ticks_us()


def ticks_add(t, delta):
    return (t + delta) & (PERIOD - 1)


def ticks_diff(a, b):
    return ((a - b + _HALF) & (PERIOD - 1)) - _HALF


sleep = host.sleep
sleep_ms = host.sleep_ms
sleep_us = host.sleep_us


def rtc_set(seconds_2000):
    global _rtc_base_s, _rtc_at_ms
    _rtc_base_s = int(seconds_2000)
    _rtc_at_ms = _uptime_ms()


def time():
    return _rtc_base_s + (_uptime_ms() - _rtc_at_ms) // 1000


def time_ns():
    return (_rtc_base_s * 1000 + _uptime_ms() - _rtc_at_ms) * 1000000


def gmtime(secs=None):
    if secs is None:
        secs = time()
    return host.gmtime(int(secs) + EPOCH_2000)[:8]  # the port gives 8 fields


localtime = gmtime  # the port keeps no timezone


def mktime(t):
    """Seconds since 2000 for a (year, month, mday, hour, minute, second, ...) tuple."""
    y, m, d = t[0], t[1], t[2]
    # Days from civil (Howard Hinnant's algorithm), counted from 1970 then shifted.
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + t[3] * 3600 + t[4] * 60 + t[5] - EPOCH_2000
