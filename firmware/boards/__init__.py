# Board profiles: pins and rates live here, never in code. Add a profile module
# and its name to NAMES (config validates the board key against it).
NAMES = ("bread_compact_s3", "bread_compact_esp32", "sim")


def load(name):
    if name == "bread_compact_s3":
        from firmware.boards import bread_compact_s3 as board
    elif name == "bread_compact_esp32":
        from firmware.boards import bread_compact_esp32 as board
    elif name == "sim":
        from firmware.boards import sim as board
    else:
        raise ValueError("unknown board profile %r (known: %s)" % (name, ", ".join(NAMES)))
    return board


_outputs = {}  # GPIO number -> the machine.Pin made for it by output_pin()


def output_pin(n):
    """GPIO n as an output, made (off: a known state) at its first use; later
    calls give the same Pin. The MCP tools that drive it are loaded per message
    and dropped (firmware/resident.py MCP), so what they switch keeps its state
    here, in the Pin's level."""
    pin = _outputs.get(n)
    if pin is None:
        from machine import Pin

        pin = _outputs[n] = Pin(n, Pin.OUT, value=0)
    return pin
