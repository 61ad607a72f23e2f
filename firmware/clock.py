# Virtual time for firmware timers. On a device speed is 1 and now_ms() is plain
# uptime. The simulator sets speed > 1 so minute-long schedules (OTA retries,
# activation polls, Wi-Fi backoff) run in seconds while their timestamps on the
# event timeline stay in device time, which is what tests assert on.
import time

try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio

speed = 1
_spd = 1  # speed the current segment was measured at
_t0 = time.ticks_ms()
_v0 = 0  # virtual ms at _t0
_epoch = None  # (virtual ms, UTC epoch ms) from the last set_time()
tz_minutes_now = 0  # the server's timezone offset, for local-time display
# ticks_diff() is only valid within 2**29 ms (~6.2 days) and ticks wrap at
# 2**30, so the segment start moves on every 2**27 ms (~1.5 days): now_ms()
# then never wraps as long as something asks for the time every few days,
# which the firmware's timers do many times a second.
_REBASE_MS = 1 << 27


def now_ms():
    """Virtual milliseconds since start. A change of speed starts a new segment,
    so virtual time never jumps when the simulator sets speed after boot."""
    global _spd, _t0, _v0
    t = time.ticks_ms()
    d = time.ticks_diff(t, _t0)
    if speed != _spd or d >= _REBASE_MS:
        _v0 += int(d * _spd)
        _t0 = t
        _spd = speed
        d = 0
    return _v0 + int(d * _spd)


async def sleep_ms(ms):
    """Sleep ms of virtual time (ms / speed of real time)."""
    if ms <= 0:
        await asyncio.sleep(0)
    else:
        await asyncio.sleep(ms / speed / 1000)


async def wait_for_ms(awaitable, ms):
    """asyncio.wait_for_ms on virtual time: TimeoutError after ms / speed real ms."""
    return await asyncio.wait_for_ms(awaitable, max(1, int(ms / speed)))


def set_time(epoch_ms, tz_minutes=0):
    """Take wall-clock time from the OTA reply's server_time. Unlike the
    reference firmware, which keeps local time in the RTC, the RTC keeps UTC:
    TLS certificate checks and signed tokens need it. The server's timezone
    offset is kept in tz_minutes for anything that shows local time."""
    global _epoch, tz_minutes_now
    _epoch = (now_ms(), int(epoch_ms))
    tz_minutes_now = int(tz_minutes)
    try:
        import machine

        tm = time.gmtime(int(epoch_ms) // 1000 - EPOCH_SHIFT)
        machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))
    except Exception:  # no RTC (unix port, whose clock is the host's) or no gmtime
        pass


def epoch_ms():
    """UTC ms since 1970 from the last set_time(), on the virtual clock; None before it."""
    if _epoch is None:
        return None
    return _epoch[1] + now_ms() - _epoch[0]


def unix_time():
    """Unix seconds (UTC) from the port's clock (the RTC that set_time() sets)."""
    return int(time.time()) + EPOCH_SHIFT


def _epoch_shift():
    # Seconds between 1970-01-01 and this port's time epoch (2000-01-01 on most boards).
    try:
        return 946684800 if time.gmtime(0)[0] == 2000 else 0
    except Exception:
        return 0


EPOCH_SHIFT = _epoch_shift()
