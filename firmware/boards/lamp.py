# A GPIO lamp as MCP tools (the reference's breadboard "lamp"): get_state,
# turn_on, turn_off. Board profiles call it from their tools() hook, which runs
# each time the app loads the MCP server, with a pin they make once per boot
# (see bread_compact_s3.py). The pin's level is the lamp's state, so the state
# survives the tools being registered again.
#
# pin is anything with value(v) and value(): machine.Pin (the ESP32 port's
# Pin.OUT reads its level back), machine.Signal (for active-low wiring), or a
# fake in tests.


def register(registry, pin, name="lamp"):
    prefix = "self." + name + "."

    def _set(on):
        pin.value(1 if on else 0)
        return True

    @registry.tool(prefix + "get_state", "Whether the %s is on: {\"power\": true|false}" % name)
    def get_state():
        return {"power": bool(pin.value())}

    @registry.tool(prefix + "turn_on", "Turn the %s on" % name)
    def turn_on():
        return _set(True)

    @registry.tool(prefix + "turn_off", "Turn the %s off" % name)
    def turn_off():
        return _set(False)
