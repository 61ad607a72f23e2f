"""Gateway operations benchmark: what TLS and the metrics cost, as ratios
against a baseline measured in the same run.

1. TLS: connect + hello + close through the real Gateway (in this process)
   to a minimal upstream that answers the hello, plain ws:// against wss://
   with a self-signed P-256 certificate made here. Both ends run in this
   process, so the TLS figure holds both handshake halves.
2. Metrics: the per-frame counting the session does (frame counter,
   perf_counter_ns pair, histogram observe) against the libopus encode of
   the same 60 ms frame.

    .venv/bin/python tools/bench/bench_gateway_ops.py [--connects 40] [--frames 2000]
"""

import argparse
import asyncio
import datetime
import os
import ssl
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402

from tools.common.wav import read_wav  # noqa: E402
from tools.gateway import metrics  # noqa: E402
from tools.gateway.config import Config, Limits, Tls  # noqa: E402
from tools.gateway.proxy import Gateway  # noqa: E402
from tools.gateway.transcode import Uplink  # noqa: E402

SPEECH = os.path.join(ROOT, "host_tests", "fixtures", "gateway", "speech_en_16k.wav")
HELLO = ('{"type":"hello","version":1,"transport":"websocket","audio_params":'
         '{"format":"pcm","sample_rate":16000,"channels":1,"frame_duration":60}}')


def self_signed(d):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    crt, pem_key = os.path.join(d, "gw.crt"), os.path.join(d, "gw.key")
    with open(crt, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(pem_key, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return Tls(crt, pem_key)


async def upstream(ws):
    async for msg in ws:
        if isinstance(msg, str) and '"hello"' in msg:
            await ws.send('{"type":"hello","version":1,"transport":"websocket","session_id":"S",'
                          '"audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}')


async def connects_ms(up_url, tls, n):
    gw = await Gateway(Config(listen_port=0, upstreams=[up_url], tls=tls, limits=Limits(0, 0, 0, 0))).start()
    try:
        ctx = ssl.create_default_context(cafile=tls.cert) if tls.cert else None
        url = "%s://localhost:%d/xiaozhi/v1/" % ("wss" if tls.cert else "ws", gw.port)
        t0 = time.perf_counter()
        for _ in range(n):
            ws = await connect(url, ssl=ctx, additional_headers={"Device-Id": "aa:bb:cc:dd:ee:ff"},
                               compression=None)
            await ws.send(HELLO)
            await ws.recv()
            await ws.close()
        return (time.perf_counter() - t0) / n * 1000
    finally:
        await gw.stop()


async def tls_cost(n):
    with tempfile.TemporaryDirectory() as d:
        tls = self_signed(d)
        async with serve(upstream, "127.0.0.1", 0, compression=None) as up:
            up_url = "ws://127.0.0.1:%d/xiaozhi/v1/" % up.sockets[0].getsockname()[1]
            await connects_ms(up_url, Tls(), 3)  # warm up imports and the upstream
            plain = await connects_ms(up_url, Tls(), n)
            secure = await connects_ms(up_url, tls, n)
    return plain, secure


def metrics_cost(frames):
    _, _, pcm = read_wav(SPEECH)
    pcm = pcm[: len(pcm) // 1920 * 1920]
    chunks = [pcm[i:i + 1920] for i in range(0, len(pcm), 1920)]
    up = Uplink("pcm")
    t0 = time.perf_counter()
    for i in range(frames):
        up.feed(chunks[i % len(chunks)])
    encode = (time.perf_counter() - t0) / frames
    t0 = time.perf_counter()
    for _ in range(frames):
        metrics.FRAMES.inc(direction="bench")
        a = time.perf_counter_ns()
        metrics.TRANSCODE_US.observe((time.perf_counter_ns() - a) / 1000, direction="bench")
    counting = (time.perf_counter() - t0) / frames
    return encode * 1e6, counting * 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connects", type=int, default=40, help="connects per variant (default 40)")
    p.add_argument("--frames", type=int, default=2000, help="frames for the metrics cost (default 2000)")
    a = p.parse_args()
    if a.connects < 1 or a.frames < 1:
        p.error("--connects and --frames must be at least 1")
    plain, secure = asyncio.run(tls_cost(a.connects))
    print(f"connect+hello+close, {a.connects} each: ws:// {plain:.1f} ms, wss:// {secure:.1f} ms "
          f"(TLS x{secure / plain:.2f})")
    encode, counting = metrics_cost(a.frames)
    print(f"per 60 ms frame: uplink Opus encode {encode:.0f} us, metrics {counting:.1f} us "
          f"({counting / encode * 100:.1f} % of the encode)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
