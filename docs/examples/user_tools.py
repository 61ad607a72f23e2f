# Example user_tools.py: copy it to the device root (next to main.py) and the
# firmware registers these tools after the default and board tools.
#
#   mpremote cp docs/examples/user_tools.py :user_tools.py
#
# The firmware loads this file at boot (to list the tools) and for each
# tools/call, and forgets it after (docs/mcp.md "Loading"), so tools() runs at
# every load and must register the same tools each time. The LED and its
# state are made once and kept in ctx.keep, which outlives loads.
#
# A lamp on the board profile's LED pin: a plain LED (or relay input), or the
# WS2812 RGB LED many ESP32-S3 boards carry (then through the neopixel driver).
# Named self.led.* so it never clashes with a board's own self.lamp.* tools.
from firmware.mcp_tools import Bool, Int, ToolError


def tools(registry, ctx):
    board = ctx.hal.board
    pin_no = getattr(board, "LED_PIN", None)
    if pin_no is None:
        return  # this board has no LED: offer no LED tools
    led = ctx.keep.get("led")
    if led is None:
        from machine import Pin

        if getattr(board, "LED_WS2812", False):
            import neopixel

            led = {"strip": neopixel.NeoPixel(Pin(pin_no), 1), "on": False}
        else:
            led = {"pin": Pin(pin_no, Pin.OUT, value=0), "on": False}
        ctx.keep["led"] = led  # plain values and hardware: a function here would keep this module alive

    def set_light(on):
        strip = led.get("strip")
        if strip is not None:
            strip[0] = (40, 40, 40) if on else (0, 0, 0)
            strip.write()
        else:
            led["pin"].value(1 if on else 0)
        led["on"] = on

    @registry.tool("self.led.get_state", "Whether the LED lamp is on. Returns {\"power\": true|false}.")
    def get_state():
        return {"power": led["on"]}  # dicts are sent as JSON text

    @registry.tool("self.led.set_power", "Turn the LED lamp on or off.", Bool("on"))
    def set_power(on):
        set_light(on)
        return True  # -> "true"

    @registry.tool(
        "self.led.blink",
        "Blink the LED lamp a few times, e.g. to show where the device is.",
        Int("times", 1, 10, default=3),
    )
    async def blink(times):
        import asyncio

        for _ in range(times):
            set_light(True)
            await asyncio.sleep(0.2)  # other tasks (audio, the socket) run meanwhile
            set_light(False)
            await asyncio.sleep(0.2)
        return "blinked %d times" % times

    @registry.tool("self.led.self_test", "Check the LED wiring (for the owner).", user_only=True)
    def self_test():
        set_light(True)
        if not led["on"]:
            raise ToolError("the LED did not switch on")
        set_light(False)
        return True
