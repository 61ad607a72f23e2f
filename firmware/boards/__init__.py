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
