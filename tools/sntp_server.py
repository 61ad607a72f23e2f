"""A small SNTP server (RFC 4330 server mode) on a UDP port, for the
simulator and tests: answers every query with the host's clock.

    python -m tools.sntp_server [--host 127.0.0.1] [--port 0]

drop_first=N ignores the first N queries, to exercise a client's retries."""

import argparse
import socket
import struct
import sys
import threading
import time

NTP_DELTA = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def reply(query, now=None):
    """The 48-byte server answer to a client query (None if it is not one)."""
    if len(query) < 48 or query[0] & 0x07 != 3:
        return None
    now = time.time() if now is None else now
    secs, frac = int(now) + NTP_DELTA, int((now % 1) * (1 << 32))
    out = bytearray(48)
    out[0] = (query[0] & 0x38) | 4  # LI 0, the client's version, mode 4 (server)
    out[1] = 1  # stratum 1
    out[24:32] = query[40:48]  # originate = the client's transmit time
    struct.pack_into("!II", out, 32, secs, frac)  # receive
    struct.pack_into("!II", out, 40, secs, frac)  # transmit
    return bytes(out)


class SntpServer:
    def __init__(self, host="127.0.0.1", port=0, drop_first=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.drop_first = drop_first
        self.queries = 0
        self._thread = None

    def serve_forever(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:  # closed by stop()
                return
            self.queries += 1
            if self.queries <= self.drop_first:
                continue
            out = reply(data)
            if out:
                self.sock.sendto(out, peer)

    def start_in_thread(self):
        self._thread = threading.Thread(target=self.serve_forever, name="sntp", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.sock.close()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.sntp_server", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="UDP port (default: any free one)")
    a = p.parse_args(argv)
    try:
        srv = SntpServer(a.host, a.port)
    except OSError as e:
        print("sntp_server: cannot listen on %s:%d: %s" % (a.host, a.port, e), file=sys.stderr)
        return 1
    print("SNTP server on %s:%d" % (a.host, srv.port), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
