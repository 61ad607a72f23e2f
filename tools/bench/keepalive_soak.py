"""The device's own keepalive with the default config (keepalive_s 10,
link_timeout_s 25), against mock servers that never ping, as stock servers
no longer do. The long twin of the short tests in host_tests/test_device.py.

    .venv/bin/python tools/bench/keepalive_soak.py [--idle-s 300]

Reports:
  - idle: a turn, then the session left idle for --idle-s; it must still be
    the same session afterwards and a second turn must complete on it;
  - hung peer: the server stops answering after a listen stop (no data, no
    FIN); seconds from the listen stop to the device's own close (bound: 30),
    and whether the next press opens a fresh session that completes a turn.
Exit status 1 when either check fails.
"""

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from tools.harness.device import finish_reply, push_to_talk, start_device  # noqa: E402
from tools.mock_server.server import MockServer  # noqa: E402

NO_PINGS = {"ping_interval": None, "ping_timeout": None, "drain_s": 0.05, "mcp_list_delay": 0.05}
BOUND_S = 30


def _server(**knobs):
    srv = MockServer(**dict(NO_PINGS, **knobs))
    srv.start_in_thread()
    return srv


def idle(idle_s):
    srv = _server()
    fw = start_device(tempfile.mkdtemp(prefix="xz-soak-"), srv.url)
    try:
        push_to_talk(fw)
        finish_reply(fw)
        time.sleep(idle_s)
        ended = [e["d"] for e in fw.seen if e["k"] in ("closed", "error")]
        push_to_talk(fw)
        finish_reply(fw)
        return {"idle_s": idle_s, "sessions": len(srv.sessions),
                "closed_while_idle": ended, "ok": not ended and len(srv.sessions) == 1}
    finally:
        fw.stop()
        srv.stop()


def hung_peer():
    srv = _server(hang_after_listen_stop=True)
    fw = start_device(tempfile.mkdtemp(prefix="xz-soak-"), srv.url)
    try:
        push_to_talk(fw)
        stop = [e for e in fw.seen if e["k"] == "tx" and e["d"].get("state") == "stop"][-1]
        closed = fw.wait_for("the hung peer was not noticed", "closed", timeout=BOUND_S + 15)
        detect_s = (closed["t"] - stop["t"]) / 1000.0
        push_to_talk(fw)
        finish_reply(fw)
        fresh = len(srv.sessions) == 2
        return {"detected_s": detect_s, "closed": closed["d"], "fresh_session_turn": fresh,
                "ok": detect_s <= BOUND_S and closed["d"]["by"] == "device" and fresh}
    finally:
        fw.stop()
        srv.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle-s", type=int, default=300, help="how long the session sits idle (300)")
    a = ap.parse_args(argv)
    if a.idle_s < 1:
        ap.error("--idle-s must be at least 1")
    report = {"idle": idle(a.idle_s), "hung_peer": hung_peer()}
    print(json.dumps(report))
    return 0 if report["idle"]["ok"] and report["hung_peer"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
