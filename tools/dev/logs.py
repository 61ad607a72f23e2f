"""Follow the device log: the firmware prints one line per record and '@EV {...}' event lines."""
import time

import serial

from tools.dev.errors import DevError


def follow(port, baud=115200, reset=False, events_only=False, until=None, timeout=None, out=print):
    """Print lines from `port` until Ctrl-C, `until` is seen (0) or `timeout` passes (1 if `until` was wanted)."""
    try:
        s = serial.serial_for_url(port, baudrate=baud, timeout=0.1)
    except (serial.SerialException, OSError) as e:
        raise DevError("cannot open %s: %s" % (port, e)) from None
    deadline = None if timeout is None else time.monotonic() + timeout
    buf = b""
    try:
        if reset:
            # Ctrl-C stops the running app, Ctrl-D soft-resets: boot.py and main.py run again.
            s.write(b"\r\x03\x03\x04")
        while deadline is None or time.monotonic() < deadline:
            try:
                chunk = s.read(256)
            except (serial.SerialException, OSError) as e:
                raise DevError("lost %s: %s" % (port, e)) from None
            if not chunk:
                continue
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").rstrip("\r")
                if events_only and not line.startswith("@EV "):
                    continue
                out(line)
                if until is not None and until in line:
                    return 0
    finally:
        s.close()
    if until is not None:
        raise DevError("%r did not appear on %s within %gs" % (until, port, timeout))
    return 0
