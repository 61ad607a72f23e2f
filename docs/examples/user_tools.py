# Example user_tools.py: copy it to the device root (next to main.py) and the
# firmware registers these tools at boot, after the default and board tools.
#
#   mpremote cp docs/examples/user_tools.py :user_tools.py
#
# A GPIO lamp on the board profile's LED pin (a plain LED or a relay input;
# not a WS2812 "RGB" LED, which needs the neopixel driver instead).
from firmware.mcp_tools import Bool, Int, ToolError


def tools(registry, ctx):
    board = ctx.hal.board
    if getattr(board, "LED_PIN", None) is None:
        return  # this board has no LED pin: offer no lamp tools
    from machine import Pin

    pin = Pin(board.LED_PIN, Pin.OUT, value=0)

    @registry.tool("self.lamp.get_state", "Whether the lamp is on. Returns {\"power\": true|false}.")
    def get_state():
        return {"power": pin.value() == 1}

    @registry.tool("self.lamp.set_power", "Turn the lamp on or off.", Bool("on"))
    def set_power(on):
        pin.value(1 if on else 0)
        return True

    @registry.tool(
        "self.lamp.blink",
        "Blink the lamp a few times, e.g. to show where the device is.",
        Int("times", 1, 10, default=3),
    )
    async def blink(times):
        import asyncio

        for _ in range(times):
            pin.value(1)
            await asyncio.sleep(0.2)  # other tasks (audio, the socket) run meanwhile
            pin.value(0)
            await asyncio.sleep(0.2)
        return "blinked %d times" % times

    @registry.tool("self.lamp.self_test", "Check the lamp wiring (for the owner).", user_only=True)
    def self_test():
        pin.value(1)
        if pin.value() != 1:
            raise ToolError("the lamp pin does not follow: check the wiring")
        pin.value(0)
        return True
