# The hardware abstraction layer. The firmware reaches hardware only through an
# object built by load(); esp32.py drives real pins, sim.py drives WAV files and
# a control stream so the same firmware runs on the MicroPython unix port.
#
# A HAL object provides:
#   board                    the board profile module (pins, rates, name)
#   mac() -> bytes           6-byte Wi-Fi STA MAC (Device-Id)
#   random_bytes(n) -> bytes
#   mic                      .start(), .stop(), await .readinto(buf): fills buf with s16le
#                            mono at board.MIC_RATE (waits until the whole buffer is ready)
#   speaker                  .start(), await .stop() (returns once it has played out),
#                            await .write(buf) s16le mono at board.SPEAKER_RATE
#   button                   await .event() -> "press" | "release"; .pressed() -> bool now
#   wlan, ap                 network.WLAN station / access point (sim: firmware/hal/sim_wlan.py), or None
#   has_led                  whether the board has a status LED (its profile's LED_PIN): without
#                            one, and without a display, nothing of firmware/status.py loads
#   led(on)                  the LED on or off (a no-op without one; boot blinks it)
#   led_colour((r, g, b))    optional: an RGB status LED (WS2812); led() is then its on/off
#   display                  a 128x64 monochrome panel (.pages, await .write_page(i, view),
#                            await .flush()), or None (firmware/display.py draws on it)
#   sysinfo() -> dict        chip, flash size, free heap, board type (OTA body, MCP status)
#   reboot()
#   until_shutdown()         coroutine: returns when the firmware should stop (sim: "quit" or end
#                            of stdin; a board: never); exit_code is then main.py's exit status


def load(board):
    """Build the HAL that the board profile names."""
    if board.HAL == "esp32":
        from firmware.hal import esp32 as impl
    elif board.HAL == "sim":
        from firmware.hal import sim as impl
    else:
        raise ValueError("board %s names unknown HAL %r" % (board.NAME, board.HAL))
    return impl.Hal(board)


async def pressed_within(hal, ms):
    """Wait up to ms of virtual time; True as soon as the button is pressed."""
    import asyncio

    from firmware import clock

    t0 = clock.now_ms()
    while True:
        left = ms - (clock.now_ms() - t0)
        if left <= 0:
            return False
        try:
            if await clock.wait_for_ms(hal.button.event(), left) == "press":
                return True
        except asyncio.TimeoutError:
            return False
