"""TLS on the gateway's one port: the real firmware under micropython connects
over wss:// with tls_verify on and our test CA and completes a turn; with
another CA, or none, it refuses the gateway with a clear reason. /healthz and
the OTA proxy answer over https on the same port, and the OTA reply hands out
wss://. Bad certificate files are one-line CLI errors."""

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import urllib.request

import pytest
from gateway_fakes import T
from test_gateway_e2e import _firmware, sim

from tools.gateway.config import Config, Tls
from tools.gateway.proxy import Gateway
from tools.mock_server.server import MockServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA, another CA, and a gateway certificate for localhost / 127.0.0.1 signed by the first."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = tmp_path_factory.mktemp("gwpki")
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def builder(subject, issuer, key):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30)))

    def ca(cn):
        k = ec.generate_private_key(ec.SECP256R1())
        c = (builder(name(cn), name(cn), k).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
             .sign(k, hashes.SHA256()))
        return k, c

    ca_key, ca_cert = ca("xz gateway test CA")
    _, other_cert = ca("xz other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = builder(name("localhost"), ca_cert.subject, key).add_extension(san, False).sign(ca_key, hashes.SHA256())
    paths = {k: str(d / k) for k in ("ca.der", "other.der", "ca.pem", "gw.crt", "gw.key")}
    for p, data in ((paths["ca.der"], ca_cert.public_bytes(serialization.Encoding.DER)),
                    (paths["other.der"], other_cert.public_bytes(serialization.Encoding.DER)),
                    (paths["ca.pem"], ca_cert.public_bytes(serialization.Encoding.PEM)),
                    (paths["gw.crt"], cert.public_bytes(serialization.Encoding.PEM)),
                    (paths["gw.key"], key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))):
        with open(p, "wb") as f:
            f.write(data)
    return paths


@contextlib.asynccontextmanager
async def tls_stack(pki):
    """The mock server (Opus, like stock) behind a TLS gateway: (mock, gw, wss URL)."""
    mock = await MockServer(format="opus", mcp_list_delay=0.1).start()
    try:
        gw = await Gateway(Config(listen_port=0, upstreams=[mock.url],
                                  tls=Tls(cert=pki["gw.crt"], key=pki["gw.key"]))).start()
        try:
            yield mock, gw, "wss://localhost:%d/xiaozhi/v1/" % gw.port
        finally:
            await gw.stop()
    finally:
        await mock.aclose()


@pytest.mark.parametrize("ca", ["ca.der", "ca.pem"])  # the device converts PEM to the DER mbedTLS takes
def test_firmware_turn_over_wss_with_the_test_ca(pki, tmp_path, ca):
    async def main():
        async with tls_stack(pki) as (mock, gw, url):
            code, so, se = await sim(url, tmp_path / "reply.wav", "--ca", pki[ca])
            assert code == 0, so + se
            assert mock.sessions[0].turns[0].frames >= 30
            assert gw.audit.find("session_end")[0]["frames_down"] > 0

    asyncio.run(main())


@pytest.mark.parametrize("ca, why", [
    ("other.der", "not correctly signed by the trusted CA"),
    (None, "certificate checks need a CA certificate"),
])
def test_firmware_refuses_a_gateway_its_ca_did_not_sign(pki, tmp_path, ca, why):
    def drive(url):
        fw = _firmware(url, tmp_path, *(("--ca", pki[ca]) if ca else ()))
        try:
            fw.send("press")
            err = fw.wait_for("no error shown", "error", 20)
            fw.send("release")
            return err["d"]["reason"]
        finally:
            fw.stop()

    async def main():
        async with tls_stack(pki) as (mock, gw, url):
            reason = await asyncio.to_thread(drive, url)
            assert why in reason, reason
            assert mock.sessions == [] and not gw.audit.find("connect")

    asyncio.run(main())


def _https(url, ca_pem, data=None, headers=None):
    ctx = ssl.create_default_context(cafile=ca_pem)
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=T, context=ctx) as r:
        return r.status, json.loads(r.read())


def test_healthz_and_ota_over_https_on_the_same_port(pki):
    async def main():
        async with tls_stack(pki) as (mock, gw, url):
            base = "https://localhost:%d" % gw.port
            status, health = await asyncio.to_thread(_https, base + "/healthz", pki["ca.pem"])
            assert status == 200 and health["status"] == "ok"
            status, reply = await asyncio.to_thread(_https, base + "/xiaozhi/ota/", pki["ca.pem"], b"{}",
                                                    {"Device-Id": "aa:bb:cc:dd:ee:ff", "Client-Id": "c"})
            assert status == 200 and reply["websocket"]["url"] == url  # the device is sent to wss://
            # Plain HTTP on the TLS port is refused without hurting the listener.
            r, w = await asyncio.open_connection("127.0.0.1", gw.port)
            w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert not (await asyncio.wait_for(r.read(), T)).startswith(b"HTTP/1.1 200")
            w.close()
            status, _ = await asyncio.to_thread(_https, base + "/healthz", pki["ca.pem"])
            assert status == 200

    asyncio.run(main())


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tools.gateway", "--listen", "127.0.0.1:0",
                           "--upstream", "ws://127.0.0.1:1/xiaozhi/v1/", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_bad_tls_files_are_one_line_errors(pki, tmp_path):
    for args, want in (
        (("--tls-cert", pki["gw.crt"]), "TLS needs both a certificate and a key"),
        (("--tls-cert", str(tmp_path / "none.crt"), "--tls-key", pki["gw.key"]), "cannot load TLS certificate"),
        (("--tls-cert", pki["ca.pem"], "--tls-key", pki["gw.key"]), "cannot load TLS certificate"),
    ):
        p = _cli(*args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stderr.startswith("gateway: error: " + want) and p.stderr.count("\n") == 1, p.stderr
