"""Serial port selection: use what the user named, or the single candidate, never a guess."""
import os

from serial.tools import list_ports

from tools.dev.errors import DevError


def candidates():
    """Serial ports that look like a board: USB serial adapters and native USB (they have a VID)."""
    return sorted(p.device for p in list_ports.comports() if p.vid is not None)


def choose(port, what="board"):
    """Return the port to use, or raise DevError telling the user what to pass."""
    if port:
        # URLs (socket://, rfc2217://) go straight to pyserial; paths must exist.
        if "://" not in port and os.sep in port and not os.path.exists(port):
            raise DevError("serial port %s does not exist (is the %s plugged in?)" % (port, what))
        return port
    found = candidates()
    if not found:
        raise DevError("no serial port found: plug in the %s over USB, or pass --port" % what)
    if len(found) > 1:
        raise DevError("several serial ports found (%s): pass --port to pick the %s" % (", ".join(found), what))
    print("using %s, the only serial port found" % found[0])
    return found[0]
