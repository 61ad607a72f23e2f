"""The device's IMA-ADPCM (viper under the real micropython, and the pure
fallback under CPython) agrees byte for byte with CPython's audioop, which the
gateway uses, on speech; and the decoded speech keeps its level within 1 dB."""

import glob
import math
import os
import subprocess
import sys
import warnings

import pytest

from firmware import codec
from tools.common.wav import read_wav
from tools.gateway.transcode import AdpcmEncoder, adpcm_decode
from tools.mock_server.audio import rms_dbfs

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")
SPEECH = sorted(glob.glob(os.path.join(ROOT, "host_tests", "fixtures", "audio", "*.wav"))
                + glob.glob(os.path.join(ROOT, "tools", "assets", "*.wav")))
FRAME = 1920  # 60 ms at 16 kHz
PACKET = 484

# Encodes raw s16le frames with the device codec and decodes packets back,
# under micropython: argv = pcm file, packets out, packets in, pcm out.
DEVICE_SCRIPT = r"""
import sys
from firmware import adpcm, adpcm_ref, codec
assert adpcm._encode is not adpcm_ref.encode and adpcm._decode is not adpcm_ref.decode, "viper not in use"
pcm_path, pkt_out, pkt_in, pcm_out = sys.argv[1:5]
c = codec.create("adpcm", 16000, 60)
pcm = bytearray(1920)
pkt = bytearray(c.max_packet)
with open(pcm_path, "rb") as f, open(pkt_out, "wb") as o:
    while f.readinto(pcm) == 1920:
        o.write(pkt[:c.encode_into(pcm, pkt)])
with open(pkt_in, "rb") as f, open(pcm_out, "wb") as o:
    while f.readinto(pkt) == len(pkt):
        o.write(pcm[:c.decode_into(pkt, pcm)])
print("done")
"""


def _frames(path):
    rate, ch, pcm = read_wav(path)
    assert (rate, ch) == (16000, 1), path
    n = len(pcm) // FRAME * FRAME
    return pcm[:n]


def _audioop_packets(pcm):
    enc = AdpcmEncoder()
    return b"".join(enc.encode(pcm[i:i + FRAME]) for i in range(0, len(pcm), FRAME))


def test_fixtures_present():
    assert len(SPEECH) >= 3, SPEECH


@pytest.mark.parametrize("path", SPEECH, ids=os.path.basename)
def test_pure_fallback_matches_audioop(path):
    pcm = _frames(path)
    c = codec.create("adpcm", 16000, 60)
    pkt = bytearray(PACKET)
    out = bytearray(FRAME)
    ref = _audioop_packets(pcm)
    decoded = bytearray()
    for k, i in enumerate(range(0, len(pcm), FRAME)):
        assert c.encode_into(pcm[i:i + FRAME], pkt) == PACKET
        assert bytes(pkt) == ref[k * PACKET:(k + 1) * PACKET], f"frame {k} differs from audioop"
        c.decode_into(pkt, out)
        assert bytes(out) == adpcm_decode(pkt), f"frame {k} decodes differently from audioop"
        decoded += out
    assert abs(rms_dbfs(decoded) - rms_dbfs(pcm)) < 1.0


@pytest.mark.parametrize("path", SPEECH, ids=os.path.basename)
def test_viper_matches_audioop(path, tmp_path):
    pcm = _frames(path)
    ref = _audioop_packets(pcm)
    ref_pcm = b"".join(adpcm_decode(ref[i:i + PACKET]) for i in range(0, len(ref), PACKET))
    (tmp_path / "in.pcm").write_bytes(pcm)
    (tmp_path / "ref.adpcm").write_bytes(ref)
    script = tmp_path / "device.py"
    script.write_text(DEVICE_SCRIPT)
    env = dict(os.environ, MICROPYPATH=ROOT + ":" + os.path.join(ROOT, "lib"))
    p = subprocess.run([MICROPYTHON, "-X", "heapsize=256k", str(script), "in.pcm", "dev.adpcm", "ref.adpcm",
                        "dev.pcm"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "done" in p.stdout, p.stdout + p.stderr
    dev = (tmp_path / "dev.adpcm").read_bytes()
    assert len(dev) == len(ref) == len(pcm) // FRAME * PACKET
    first = next((i for i in range(len(dev)) if dev[i] != ref[i]), None)
    assert first is None, f"device packets differ from audioop at byte {first} (frame {first // PACKET})"
    assert (tmp_path / "dev.pcm").read_bytes() == ref_pcm
    # The speech level survives the codec: within 1 dB of the original.
    assert abs(rms_dbfs(ref_pcm) - rms_dbfs(pcm)) < 1.0
    assert len(pcm) / len(dev) > 3.9  # 4:1 less the 4-byte header per frame


def test_gateway_rejects_a_corrupt_header():
    assert adpcm_decode(b"\x00\x00") is None
    assert adpcm_decode(b"\x00\x00\x59\x00" + bytes(10)) is None  # step index 89


def test_level_helper_sees_the_signal():
    # Guards the 1 dB checks above against comparing silence with silence.
    pcm = _frames(SPEECH[0])
    assert rms_dbfs(pcm) > -40 and not math.isinf(rms_dbfs(pcm))
    assert audioop.rms(pcm, 2) > 100
