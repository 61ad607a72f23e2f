"""CLI: python -m tools.mock_server [options]  (see --help)."""

import argparse
import asyncio
import logging
import math
import sys

from . import mcp_script
from .server import DEFAULT_WAKE_WORDS, MockServer


def _range_arg(convert, what, below=math.inf):
    """An argparse type: convert(text) in 0 <= v < below (so never NaN or inf)."""

    def parse(text):
        try:
            v = convert(text)
        except ValueError:
            v = None
        if v is None or not 0 <= v < below:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


_nonneg_int = _range_arg(int, "an integer >= 0")
_nonneg_float = _range_arg(float, "a number >= 0")
_port = _range_arg(int, "a port 0..65535", below=65536)


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m tools.mock_server",
        description="Mock xiaozhi server (imitates xinnan-tech/xiaozhi-esp32-server on the wire) "
                    "with a scripted ASR/LLM/TTS, an MCP client, fault knobs and a recorder.")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8765, help="port (default 8765, 0 = any)")
    p.add_argument("--format", choices=("pcm", "opus"), default="pcm",
                   help="pcm: s16le 16 kHz up / s16le --tts-rate down (default); "
                        "opus: as the stock server")
    p.add_argument("--tts-rate", type=int, default=24000, help="downlink sample rate (24000)")
    p.add_argument("--drain", type=_nonneg_float, default=0.42, metavar="S",
                   help="wait after the last TTS frame before tts stop (0.42 s)")
    p.add_argument("--abort-stop-delay", type=_nonneg_float, default=0.4, metavar="S",
                   help="delay of the duplicate tts stop after an abort (0.4 s)")
    p.add_argument("--pace-ms", type=_nonneg_int, default=60,
                   help="TTS pacing after the first 5 frames (60; 0 = as fast as possible)")
    p.add_argument("--ping-interval", type=_nonneg_float, default=20.0, metavar="S",
                   help="WebSocket PING interval, also the PONG timeout (20 s; 0 = off)")
    p.add_argument("--vad-threshold", type=float, default=-45.0, metavar="DBFS",
                   help="auto-mode energy VAD threshold (-45 dBFS)")
    p.add_argument("--vad-silence-ms", type=_nonneg_int, default=600,
                   help="silence that ends an utterance in auto mode (600 ms)")
    p.add_argument("--max-utterance-ms", type=_nonneg_int, default=15000,
                   help="auto-mode utterance length limit (15000 ms)")
    p.add_argument("--wake-word", action="append", metavar="TEXT",
                   help="listen-detect text answered with the stock greeting (no stt); "
                        "repeatable; default 你好小智; --wake-word '' disables")
    g = p.add_argument_group("auth")
    g.add_argument("--auth-key", metavar="KEY",
                   help="check stock tokens (<sig>.<ts>, HMAC-SHA256 with KEY)")
    g.add_argument("--token", metavar="T", help="accept this fixed bearer token")
    g.add_argument("--allow-device", action="append", default=[], metavar="ID",
                   help="device id that skips the auth check (repeatable)")
    g = p.add_argument_group("MCP")
    g.add_argument("--mcp-script", metavar="FILE",
                   help="JSON list of calls to make after tools/list: "
                        '{"name":..,"arguments":{..}}, {"payload":{..}}, {"raw":".."}, {"sleep":S}')
    g.add_argument("--mcp-list-delay", type=_nonneg_float, default=1.0, metavar="S",
                   help="delay between the initialize result and tools/list (1 s)")
    g = p.add_argument_group("recording")
    g.add_argument("--record", metavar="FILE",
                   help="write every session and frame (both ways) as JSON lines")
    g = p.add_argument_group("faults (first connection only unless --fault-sessions)")
    g.add_argument("--no-hello", action="store_true", help="never answer the hello")
    g.add_argument("--stall", action="store_true", help="stop responding after the hello")
    g.add_argument("--hang-after-listen-stop", action="store_true",
                   help="after a listen stop read nothing, send nothing, keep the TCP open (a hung peer)")
    g.add_argument("--slow-ms", type=_nonneg_int, default=0, help="delay every response by N ms")
    g.add_argument("--close-mid-tts", type=_nonneg_int, default=0, metavar="N",
                   help="close (1000) after N audio frames of the first reply")
    g.add_argument("--drop-mid-tts", type=_nonneg_int, default=0, metavar="N",
                   help="drop the TCP connection (no close frame) after N audio frames")
    g.add_argument("--garbage", action="store_true",
                   help="send bad JSON, unknown types, lying and random binary frames "
                        "at the start of the first reply")
    g.add_argument("--oversized", action="store_true",
                   help="send a 200 KB binary frame and a 200 KB text frame in the first reply")
    g.add_argument("--fault-sessions", type=_nonneg_int, default=1, metavar="N",
                   help="apply faults to the first N connections (default 1; 0 = all)")
    g = p.add_argument_group("TLS")
    g.add_argument("--tls-cert", metavar="PEM", help="serve wss:// with this certificate (chain)")
    g.add_argument("--tls-key", metavar="PEM", help="the certificate's private key (default: in --tls-cert)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _usage_error(e):
    """Bad arguments: one line, exit 2 (a failed run is 'mock_server: FAILED: ...', exit 1)."""
    print(f"mock_server: error: {e}", file=sys.stderr)
    return 2


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key needs --tls-cert")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stdout,
                        format="%(asctime)s.%(msecs)03d %(message)s", datefmt="%H:%M:%S")
    if not args.verbose:
        logging.getLogger("websockets").setLevel(logging.WARNING)
    script = None
    if args.mcp_script:
        try:
            script = mcp_script.load(args.mcp_script)
        except mcp_script.ScriptError as e:
            return _usage_error(e)
    try:
        srv = MockServer(
            args.host, args.port, format=args.format, tts_rate=args.tts_rate,
            auth_key=args.auth_key, token=args.token, allow_devices=args.allow_device,
            mcp_script=script, mcp_list_delay=args.mcp_list_delay, record=args.record,
            drain_s=args.drain, pace_ms=args.pace_ms, abort_stop_delay=args.abort_stop_delay,
            max_utterance_ms=args.max_utterance_ms,
            wake_words=DEFAULT_WAKE_WORDS if args.wake_word is None else [w for w in args.wake_word if w],
            vad_threshold_db=args.vad_threshold, vad_silence_ms=args.vad_silence_ms,
            ping_interval=args.ping_interval or None, ping_timeout=args.ping_interval or None,
            no_hello=args.no_hello, stall=args.stall, slow_ms=args.slow_ms,
            hang_after_listen_stop=args.hang_after_listen_stop,
            close_mid_tts=args.close_mid_tts, drop_mid_tts=args.drop_mid_tts,
            garbage=args.garbage, oversized=args.oversized, fault_sessions=args.fault_sessions,
            tls_cert=args.tls_cert, tls_key=args.tls_key)
    except ValueError as e:
        return _usage_error(e)

    async def run():
        try:
            await srv.start()
        except OSError as e:
            sys.exit(f"mock_server: FAILED: cannot listen on {args.host}:{args.port}: {e.strerror or e}")
        print(f"mock xiaozhi server on {srv.url}", flush=True)
        try:
            await asyncio.Future()
        finally:
            await srv.aclose()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as e:
        sys.exit(f"mock_server: FAILED: {e}")


if __name__ == "__main__":
    sys.exit(main())
