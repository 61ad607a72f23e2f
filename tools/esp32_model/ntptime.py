# ntptime for the ESP32 model, with the API of micropython-lib's ntptime that
# the stock esp32 build freezes (micropython/net/ntptime): host, timeout,
# time() -> seconds since the port's 2000 epoch, settime() -> sets the RTC to
# UTC. Like it, one blocking SNTP query over UDP. Written here, not copied.
# The model sends what would go to port 123 to sim.json's "ntp_port" on the
# same host, so a test server needs no root.
import socket
import struct

from tools.esp32_model import machine, mtime
from tools.esp32_model import world as _world

host = "pool.ntp.org"
timeout = 1
_NTP_TO_2000 = 3155673600  # seconds from 1900-01-01 to 2000-01-01


def time():
    port = _world.world.opts.get("ntp_port", 123)
    addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][-1]
    query = bytearray(48)
    query[0] = 0x1B  # LI 0, version 3, mode 3 (client)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(query, addr)
        reply = s.recv(48)
    finally:
        s.close()
    if len(reply) < 48:
        raise OSError("short NTP reply")
    return struct.unpack("!I", reply[40:44])[0] - _NTP_TO_2000


def settime():
    t = mtime.gmtime(time())
    machine.RTC().datetime((t[0], t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0))
