"""python -m tools.dev doctor: check each hop a device takes, from this PC, and name the first broken one.

The hops, in the order a device meets them:
  1. config   - a Wi-Fi network is saved, and an OTA or WebSocket URL is set
  2. ota      - the OTA URL resolves, accepts a connection and answers the device's POST with JSON
  3. upstream - the WebSocket URL (from the OTA reply, or the config) answers a hello: the gateway
                connects to the xiaozhi server first, so its hello proves that hop too
  4. gateway  - one short text turn ("你好") comes back as pcm audio: that is the gateway; Opus audio
                means the URL reaches a stock server directly, which the device cannot decode

Each hop that answers prints one line; the first failure ends the run with one `dev: FAILED:` line
that says what to change (exit 1).
"""
import ipaddress
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid

from tools.dev.errors import DevError

PROBE_DEVICE_ID = "02:00:00:d0:c7:01"  # locally administered: never a real board's MAC
TIMEOUT_S = 10


class Broken(Exception):
    """A hop failed; str() says why and what to do."""


def _ok(hop, text):
    print("ok    %-9s %s" % (hop, text), flush=True)


def _warn(hop, text):
    print("warn  %-9s %s" % (hop, text), flush=True)


def _loopback(host):
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _reach(hop, url):
    """DNS and TCP for one URL; returns (host, port)."""
    u = urllib.parse.urlsplit(url)
    host = u.hostname or ""
    port = u.port or (443 if u.scheme in ("https", "wss") else 80)
    if _loopback(host):
        _warn(hop, "%s points at this PC (%s): a device cannot reach it; use the host's LAN address" % (url, host))
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise Broken("%s: DNS cannot resolve %r (%s)" % (hop, host, e.strerror or e)) from None
    try:
        socket.create_connection(infos[0][4][:2], timeout=TIMEOUT_S).close()
    except OSError as e:
        raise Broken("%s: nothing answers on %s:%d (%s); is the service running and the port open in the "
                     "firewall?" % (hop, host, port, e.strerror or e)) from None
    return host, port


def check_config(cfg):
    nets = [n.get("ssid") for n in cfg.get("wifi") or [] if isinstance(n, dict)]
    if nets:
        _ok("config", "Wi-Fi network(s): %s" % ", ".join(nets))
    else:
        _warn("config", "no Wi-Fi network saved: the device will open its setup hotspot Xiaozhi-XXXX")
    if not cfg.get("ota_url") and not cfg.get("ws_url"):
        raise Broken("config: neither ota_url nor ws_url is set; set --ota-url http://<gateway>:8765/xiaozhi/ota/")


def check_ota(url, device_id, client_id):
    """POST what a device posts; returns the parsed reply."""
    _reach("ota", url)
    body = json.dumps({"version": 2, "language": "zh-CN", "mac_address": device_id, "uuid": client_id,
                       "chip_model_name": "esp32s3", "application": {"name": "xiaozhi", "version": "doctor"},
                       "board": {"type": "doctor", "name": "doctor"}}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Device-Id": device_id, "Client-Id": client_id, "Content-Type": "application/json",
        "User-Agent": "doctor/1", "Accept-Language": "zh-CN"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            raw = resp.read(65536)
    except urllib.error.HTTPError as e:
        raise Broken("ota: %s answered HTTP %d %s" % (url, e.code, e.reason)) from None
    except (urllib.error.URLError, OSError) as e:
        raise Broken("ota: %s failed: %s" % (url, getattr(e, "reason", e))) from None
    try:
        reply = json.loads(raw)
    except ValueError:
        raise Broken("ota: %s answered something that is not JSON: %r" % (url, raw[:60])) from None
    if not isinstance(reply, dict):
        raise Broken("ota: %s answered JSON that is not an object" % url) from None
    ws = reply.get("websocket") if isinstance(reply.get("websocket"), dict) else {}
    if not ws.get("url"):
        raise Broken("ota: the reply has no websocket.url; is %s an OTA endpoint (…/xiaozhi/ota/)?" % url) from None
    _ok("ota", "%s answers; it hands out %s" % (url, ws["url"]))
    if urllib.parse.urlsplit(ws["url"]).port == 8000:
        _warn("ota", "port 8000 is the stock server's WebSocket: point ota_url at the gateway's OTA URL "
                     "(http://<gateway>:8765/xiaozhi/ota/), not at the server's port 8003")
    act = reply.get("activation")
    if isinstance(act, dict) and act.get("code"):
        _warn("ota", "activation pending: enter code %s in the server's console (智控台) to bind the device"
              % act["code"])
    return reply


def _first_audio(ws):
    """The first binary frame of a reply, skipping text; None if no audio came in time."""
    while True:
        msg = ws.recv(timeout=TIMEOUT_S)
        if isinstance(msg, bytes):
            return msg


def check_gateway(url, device_id, client_id, token):
    """Open the WebSocket a device opens, send its hello and one short text turn, and look at the
    reply audio. A stock server echoes any hello format, so only the audio tells it from the gateway:
    pcm frames are a whole 60 ms of samples; Opus packets are a few hundred bytes."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake
    from websockets.sync.client import connect

    _reach("gateway", url)
    headers = {"Device-Id": device_id, "Client-Id": client_id, "Protocol-Version": "1"}
    if token:
        headers["Authorization"] = token if " " in token else "Bearer " + token
    hello = {"type": "hello", "version": 1, "transport": "websocket", "features": {"mcp": True},
             "audio_params": {"format": "pcm", "sample_rate": 16000, "channels": 1, "frame_duration": 60}}
    step = "hello"
    try:
        with connect(url, additional_headers=headers, open_timeout=TIMEOUT_S, close_timeout=2) as ws:
            ws.send(json.dumps(hello))
            while True:
                msg = ws.recv(timeout=TIMEOUT_S)
                if isinstance(msg, bytes):
                    continue
                try:
                    data = json.loads(msg)
                except ValueError:
                    raise Broken("gateway: %s refused the hello: %s" % (url, msg[:80])) from None
                if isinstance(data, dict) and data.get("type") == "hello":
                    break
            params = data.get("audio_params") if isinstance(data.get("audio_params"), dict) else {}
            rate = params.get("sample_rate") if isinstance(params.get("sample_rate"), int) else 24000
            _ok("upstream", "the xiaozhi server answered the hello (session %s)" % data.get("session_id", "?"))
            step = "reply"
            sid = data.get("session_id") or ""
            ws.send(json.dumps({"session_id": sid, "type": "listen", "state": "detect", "text": "你好"}))
            audio = _first_audio(ws)
            ws.send(json.dumps({"session_id": sid, "type": "abort"}))
    except TimeoutError:
        if step == "hello":
            raise Broken("gateway: %s sent no hello within %d s" % (url, TIMEOUT_S)) from None
        raise Broken("upstream: the server sent no reply audio within %d s of a text turn; check its "
                     "TTS/LLM settings" % TIMEOUT_S) from None
    except ConnectionClosed as e:
        rcvd = e.rcvd
        why = "%d %s" % (rcvd.code, rcvd.reason) if rcvd else "no close frame"
        if rcvd and rcvd.code == 1013:
            raise Broken("upstream: the gateway cannot reach the xiaozhi server (%s); check its --upstream URL "
                         "and that the server listens on port 8000" % why) from None
        raise Broken("gateway: %s closed the session during the %s (%s); a token or device secret may be "
                     "wrong" % (url, step, why)) from None
    except (InvalidHandshake, OSError) as e:
        raise Broken("gateway: WebSocket handshake with %s failed: %s" % (url, e)) from None
    pcm_frame = rate * 60 // 1000 * 2
    if len(audio) * 2 < pcm_frame:
        raise Broken("gateway: %s sends Opus audio (%d-byte frames where pcm at %d Hz is %d): that is a stock "
                     "server, which this device cannot decode; run the gateway (python -m tools.gateway) in "
                     "front of it and use the gateway's URL" % (url, len(audio), rate, pcm_frame)) from None
    _ok("gateway", "%s speaks pcm (%d-byte reply frames at %d Hz)" % (url, len(audio), rate))


def run(cfg, ws_override=None, device_id=PROBE_DEVICE_ID, client_id=None, token=None):
    """Check every hop; returns 0 when all pass, raises DevError naming the first broken one."""
    client_id = client_id or cfg.get("client_id") or str(uuid.uuid4())
    try:
        check_config(cfg)
        ws_url = ws_override or cfg.get("ws_url")
        if cfg.get("ota_url"):
            reply = check_ota(cfg["ota_url"], device_id, client_id)
            if not ws_url or cfg.get("server_managed_urls"):
                ws_url = reply["websocket"]["url"]
            token = token or reply["websocket"].get("token") or None
        check_gateway(ws_url, device_id, client_id, token or cfg.get("ws_token"))
    except Broken as e:
        raise DevError(str(e)) from None  # the CLI prints it as the one "dev: FAILED:" line, exit 1
    print("all hops answer: the device should reach its server", flush=True)
    return 0


def load_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except OSError as e:
        raise DevError("cannot read %s: %s" % (path, e.strerror or e)) from None
    except ValueError as e:
        raise DevError("%s is not valid JSON: %s" % (path, e)) from None
    if not isinstance(cfg, dict):
        raise DevError("%s must hold a JSON object" % path) from None
    return cfg
