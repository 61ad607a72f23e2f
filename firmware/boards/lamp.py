# A GPIO lamp as MCP tools (the reference's breadboard "lamp"): get_state,
# turn_on, turn_off. Board profiles call it from their tools() hook:
#
#   def tools(registry, hal):
#       from machine import Pin
#       from firmware.boards import lamp
#       lamp.register(registry, Pin(LAMP_PIN, Pin.OUT))
#
# pin is anything with value(v): machine.Pin, machine.Signal (for active-low
# wiring), or a fake in tests.


def register(registry, pin, name="lamp"):
    pin.value(0)  # a known state, so get_state never guesses
    state = [False]
    prefix = "self." + name + "."

    def _set(on):
        pin.value(1 if on else 0)
        state[0] = on
        return True

    @registry.tool(prefix + "get_state", "Whether the %s is on: {\"power\": true|false}" % name)
    def get_state():
        return {"power": state[0]}

    @registry.tool(prefix + "turn_on", "Turn the %s on" % name)
    def turn_on():
        return _set(True)

    @registry.tool(prefix + "turn_off", "Turn the %s off" % name)
    def turn_off():
        return _set(False)
