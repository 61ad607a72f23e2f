# firmware/clock.py on the modelled ticks_ms(), which wraps at 2**30 with
# ticks_diff() valid within 2**29 ms (issue 15 defect 5).
from firmware import clock
from tools.esp32_model import mtime

DAY_MS = 24 * 3600 * 1000


def test_uptime_survives_weeks_of_ticks_wraps():
    start = clock.now_ms()
    # Three weeks, in steps of a little over an hour: more than two wraps of
    # ticks_ms(); the firmware's timers ask for the time far more often.
    for _ in range(21 * 24):
        mtime.advance(3600 * 1000 + 1)
        clock.now_ms()
    up = clock.now_ms() - start
    assert up >= 21 * DAY_MS, "uptime %d ms after 21 days" % up


def test_timeout_spanning_the_six_day_mark_fires():
    t0 = clock.now_ms()
    mtime.advance((1 << 29) - 1000)  # just before ticks_diff() would turn negative
    clock.now_ms()
    mtime.advance(61000)
    assert clock.now_ms() - t0 > (1 << 29), "a 60 s timeout across 6.2 days of uptime never fires"
