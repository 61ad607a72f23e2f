"""lib/httpclient over TLS under micropython: a server certificate signed by the CA
we pass as cadata is accepted; without that CA, or for another host name, the
request fails with a clear HTTPError."""

import datetime
import os
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from bootkit import MICROPYTHON, REPO

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
except ImportError:  # a missing tool fails the run, never skips it
    pytest.fail("the Python package cryptography is missing: run `make setup` (scripts/setup installs "
                "requirements.txt)", pytrace=False)

CLIENT = """
import asyncio, sys, httpclient
ca = open("ca.der", "rb").read() if sys.argv[2] == "ca" else None
async def main():
    try:
        r = await httpclient.request("GET", sys.argv[1], cadata=ca, timeout_ms=5000)
        print("STATUS", r.status, r.body.decode())
    except httpclient.HTTPError as e:
        print("ERROR", e)
asyncio.run(main())
"""


def _cert(tmp_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xz test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "ca.der").write_bytes(ca.public_bytes(serialization.Encoding.DER))
    (tmp_path / "srv.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *a):
        pass


@pytest.fixture
def tls_server(tmp_path):
    _cert(tmp_path)
    srv = HTTPServer(("127.0.0.1", 0), _Hello)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "srv.pem")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


def _get(tmp_path, url, ca):
    (tmp_path / "client.py").write_text(CLIENT)
    env = dict(os.environ, MICROPYPATH=".frozen:%s/lib" % REPO)
    p = subprocess.run([MICROPYTHON, "client.py", url, ca], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=30)
    return p.stdout.strip()


def test_tls_with_our_ca(tmp_path, tls_server):
    assert _get(tmp_path, "https://localhost:%d/" % tls_server, "ca") == "STATUS 200 hello"


def test_tls_without_the_ca_fails_clearly(tmp_path, tls_server):
    out = _get(tmp_path, "https://localhost:%d/" % tls_server, "none")
    assert out.startswith("ERROR https to localhost: certificate checks need a CA certificate"), out


def test_tls_wrong_host_name_fails(tmp_path, tls_server):
    # 127.0.0.1 is not the name in the certificate.
    out = _get(tmp_path, "https://127.0.0.1:%d/" % tls_server, "ca")
    assert out.startswith("ERROR"), out
