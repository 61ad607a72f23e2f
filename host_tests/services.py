"""Real servers the gateway scaling tests run: redis-server and nginx (Debian
packages), each on a free loopback port with every file in a temp dir, and a
test PKI. A missing binary fails the test naming the setup step."""

import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = 20  # seconds: bound on every wait


def need(binary, package):
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.access(p, os.X_OK)), None)
    if path is None:
        pytest.fail(f"{binary} not found: run `make setup` (scripts/setup installs the Debian package {package})")
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, log_path=None):
    """Wait until something accepts on 127.0.0.1:port; fail with the server's log if it exits."""
    deadline = time.monotonic() + T
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = open(log_path).read() if log_path and os.path.exists(log_path) else ""
            pytest.fail(f"server exited with {proc.returncode} before listening on {port}: {log[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {T} s")


class GatewayCli:
    """`python -m tools.gateway` as a subprocess, its stderr collected as it comes."""

    def __init__(self, *args):
        self.p = subprocess.Popen([sys.executable, "-m", "tools.gateway", "--listen", "127.0.0.1:0", *args],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err = []
        self._reader = threading.Thread(target=lambda: self.err.extend(iter(self.p.stderr.readline, "")),
                                        daemon=True)
        self._reader.start()
        self.ready = self.p.stdout.readline()
        m = re.search(r"ws://127\.0\.0\.1:(\d+)/", self.ready)
        assert m, (self.ready, self.stderr())
        self.port = int(m.group(1))

    def stderr(self):
        return "".join(self.err)

    def wait_for(self, pattern, after=0):
        """The first match of pattern in the log from character `after` on."""
        deadline = time.monotonic() + T
        while time.monotonic() < deadline:
            m = re.compile(pattern).search(self.stderr(), after)
            if m:
                return m
            time.sleep(0.05)
        pytest.fail(f"no {pattern!r} in the gateway log:\n{self.stderr()}")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        self.p.wait(T)
        self._reader.join(T)  # the whole log is in self.err
        return self.p.returncode

    def kill(self):
        self.p.kill()
        self.p.wait(T)
        self._reader.join(T)


class RedisServer:
    """redis-server on a free loopback port, no persistence; stop() and start()
    again keep the port, so a test can take Redis away and bring it back."""

    def __init__(self, workdir):
        self.binary = need("redis-server", "redis-server")
        self.workdir = str(workdir)
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        log = os.path.join(self.workdir, "redis.log")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir, "--logfile", log, "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, log)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(T)
        self.proc = None


def make_pki(d):
    """A test CA and a server certificate for localhost and 127.0.0.1:
    {"ca_der", "ca_pem", "crt", "key"} paths in d."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xz gateway test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {k: os.path.join(str(d), n) for k, n in
             (("ca_der", "ca.der"), ("ca_pem", "ca.pem"), ("crt", "server.crt"), ("key", "server.key"))}
    with open(paths["ca_der"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.DER))
    with open(paths["ca_pem"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["crt"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


NGINX_MAIN = """\
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {site};
}}
"""


class Nginx:
    """Real nginx, unprivileged (-p tmpdir, pid and logs there) running a site
    config file (e.g. deploy/nginx/xiaozhi-gateway.conf with test ports and cert)."""

    def __init__(self, workdir, site_text, port):
        self.binary = need("nginx", "nginx")
        self.dir = str(workdir)
        self.port = port
        site = os.path.join(self.dir, "site.conf")
        with open(site, "w") as f:
            f.write(site_text)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_MAIN.format(d=self.dir, site=site))
        self.proc = None

    def log(self):
        path = os.path.join(self.dir, "error.log")
        return open(path).read() if os.path.exists(path) else ""

    def start(self):
        test = subprocess.run([self.binary, "-t", "-p", self.dir, "-e", os.path.join(self.dir, "error.log"),
                               "-c", self.conf], capture_output=True, text=True, timeout=T)
        assert test.returncode == 0, test.stderr
        self.proc = subprocess.Popen([self.binary, "-p", self.dir, "-e", os.path.join(self.dir, "error.log"),
                                      "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, os.path.join(self.dir, "error.log"))
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish requests, remove the pid file
            try:
                self.proc.wait(T)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(T)
