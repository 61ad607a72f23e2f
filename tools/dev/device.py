"""A MicroPython board reached through mpremote's serial transport (one raw-REPL session).

Everything deploy and config need from the device goes through here: hashing
files on the device, writing and removing files, and the final soft reset.
"""
import ast

from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from tools.dev.errors import DevError

# Runs on the device: walk the given dirs and print one repr'd tuple per entry:
# (path, is_dir, sha256-hex or None). Only files named in _H are hashed, so a big
# /lib of other libraries costs a listing, not a read.
_SCAN = """
import os, hashlib, binascii
def _h(p):
    d = hashlib.sha256()
    b = bytearray(512)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            d.update(memoryview(b)[:n])
    return binascii.hexlify(d.digest()).decode()
def _walk(top):
    try:
        it = list(os.ilistdir(top))
    except OSError:
        return
    print(repr((top, True, None)))
    for e in it:
        p = top + '/' + e[0]
        if e[1] & 0x4000:
            _walk(p)
        elif p in _H:
            print(repr((p, False, _h(p))))
        else:
            print(repr((p, False, None)))
_H = set(%r)
for _t in %r:
    _walk(_t)
for _f in %r:
    try:
        os.stat(_f)
        print(repr((_f, False, _h(_f) if _f in _H else None)))
    except OSError:
        pass
"""

_WRITE_CHUNK = 512


def _last_line(e):
    text = getattr(e, "error_output", "") or str(e)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


class Device:
    """Open `port`, stop whatever runs there (Ctrl-C) and enter the raw REPL.

    soft_reset=True also soft-resets first so the firmware is not holding RAM or
    sockets; pass False (mpremote's `resume`) for ports that cannot soft-reset.
    """

    def __init__(self, port, root="/", soft_reset=True, timeout=10, baud=115200):
        self.port = port
        self.root = root.rstrip("/")
        try:
            self.t = SerialTransport(port, baudrate=baud, timeout=1)
        except (TransportError, OSError) as e:
            raise DevError("cannot open %s: %s" % (port, e)) from None
        try:
            self.t.enter_raw_repl(soft_reset=soft_reset, timeout_overall=timeout)
        except (TransportError, OSError):
            self.t.close()
            raise DevError("no MicroPython REPL answered on %s within %gs (is MicroPython flashed, "
                           "and no other program using the port?)" % (port, timeout)) from None

    def abs(self, rel):
        return self.root + "/" + rel

    def _lost(self, e):
        # A cable pulled mid-transfer surfaces as pyserial's SerialException
        # (an OSError) or a TransportError, from any call: one line, no traceback.
        return DevError("lost the device on %s: %s" % (self.port, _last_line(e)))

    def exec(self, code):
        try:
            return self.t.exec(code).decode("utf-8", "replace")
        except TransportExecError as e:
            raise DevError("device error on %s: %s" % (self.port, _last_line(e))) from None
        except (TransportError, OSError) as e:
            raise self._lost(e) from None

    def scan(self, dirs, files, hash_paths):
        """{rel path: (is_dir, sha256 or None)} for everything under `dirs` plus existing `files`."""
        out = {}
        code = _SCAN % ([self.abs(p) for p in hash_paths], [self.abs(d) for d in dirs],
                        [self.abs(f) for f in files])
        for line in self.exec(code).splitlines():
            if line.startswith("("):
                path, is_dir, digest = ast.literal_eval(line)
                out[path[len(self.root) + 1:]] = (is_dir, digest)
        return out

    def read(self, rel):
        """File bytes, or None when the file does not exist."""
        try:
            return bytes(self.t.fs_readfile(self.abs(rel), chunk_size=_WRITE_CHUNK))
        except FileNotFoundError:
            return None
        except TransportExecError as e:
            raise DevError("could not read %s on the device: %s" % (rel, _last_line(e))) from None
        except (TransportError, OSError) as e:
            raise self._lost(e) from None

    def mkdir(self, rel):
        self.exec("import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % self.abs(rel))

    def write(self, rel, data):
        try:
            self.t.fs_writefile(self.abs(rel), data, chunk_size=_WRITE_CHUNK)
        except (TransportError, OSError) as e:
            raise DevError("could not write %s on the device on %s: %s" % (rel, self.port, _last_line(e))) from None

    def write_atomic(self, rel, data):
        """Temp file then rename, as firmware/config.py does, so a cut cable never leaves half a file."""
        self.write(rel + ".tmp", data)
        a, b = self.abs(rel + ".tmp"), self.abs(rel)
        self.exec("import os\ntry:\n os.rename(%r, %r)\nexcept OSError:\n os.remove(%r)\n os.rename(%r, %r)"
                  % (a, b, b, a, b))

    def remove(self, rel):
        self.exec("import os\nos.remove(%r)" % self.abs(rel))

    def soft_reset(self):
        """Leave the raw REPL and press Ctrl-D: the board reboots into boot.py and main.py."""
        try:
            self.t.exit_raw_repl()
            self.t.serial.write(b"\x04")
            self.t.serial.flush()
        except OSError:
            pass

    def close(self):
        try:
            if self.t.in_raw_repl:
                self.t.exit_raw_repl()
            self.t.close()
        except (TransportError, OSError):
            pass
