"""tools/faultproxy.py on its own, with plain sockets: each mode does what the
fault tests rely on."""

import socket
import subprocess
import sys
import threading

import pytest
from dev_cli import ROOT

from tools.faultproxy import FaultProxy


@pytest.fixture
def echo():
    """A TCP echo server on 127.0.0.1."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()
    stop.set()
    srv.close()


def _echo(c):
    with c:
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            c.sendall(data)


def _client(proxy, timeout=5):
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    return s


def _recv_exactly(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def test_pass_then_blackhole_holds_data_without_fin_then_pass_releases_it(echo):
    with FaultProxy(echo) as p:
        s = _client(p)
        s.sendall(b"hello")
        assert _recv_exactly(s, 5) == b"hello"
        p.set_mode("blackhole")
        s.sendall(b"lost?")
        s.settimeout(1.0)
        with pytest.raises(socket.timeout):  # no data and no FIN (recv would return b"")
            s.recv(10)
        p.set_mode("pass")
        s.settimeout(5)
        assert _recv_exactly(s, 5) == b"lost?"
        s.close()


def test_blackhole_after_n_bytes_cuts_mid_stream(echo):
    with FaultProxy(echo) as p:
        s = _client(p)
        p.set_mode("pass", after_bytes=3)
        s.sendall(b"abcdef")
        assert _recv_exactly(s, 3) == b"abc"
        s.settimeout(1.0)
        with pytest.raises(socket.timeout):
            s.recv(10)
        s.close()


def test_reset_sends_rst_and_refuse_stops_listening(echo):
    with FaultProxy(echo) as p:
        s = _client(p)
        s.sendall(b"x")
        assert _recv_exactly(s, 1) == b"x"
        p.set_mode("reset")
        with pytest.raises(ConnectionResetError):
            s.sendall(b"y")
            s.recv(10)
            s.recv(10)
        s.close()
        p.set_mode("refuse")
        with pytest.raises(ConnectionRefusedError):
            _client(p)
        p.set_mode("pass")
        s = _client(p)
        s.sendall(b"back")
        assert _recv_exactly(s, 4) == b"back"
        s.close()


def test_slow_mode_still_delivers_everything(echo):
    with FaultProxy(echo) as p:
        p.set_mode("slow", latency_ms=20, rate=100000)
        s = _client(p, timeout=20)
        data = bytes(range(256)) * 40
        s.sendall(data)
        assert _recv_exactly(s, len(data)) == data
        s.close()


@pytest.mark.parametrize("args", [["--target", "nowhere"], ["--target", "127.0.0.1:70000"], []])
def test_cli_rejects_bad_arguments(args):
    p = subprocess.run([sys.executable, "-m", "tools.faultproxy", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "error:" in p.stderr
