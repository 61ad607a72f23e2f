# Board profiles: pins and rates live here, never in code.


def load(name):
    if name == "bread_compact_s3":
        from firmware.boards import bread_compact_s3 as board
    elif name == "sim":
        from firmware.boards import sim as board
    else:
        raise ValueError("unknown board profile %r (known: bread_compact_s3, sim)" % name)
    return board
