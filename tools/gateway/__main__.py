"""python -m tools.gateway: the xiaozhi edge gateway (PCM device ⇄ Opus server)."""

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys

from .config import (
    Config,
    ConfigError,
    RunError,
    check_http_url,
    check_opus_bitrate,
    check_opus_complexity,
    check_redis_url,
    check_tls,
    check_trusted_proxies,
    check_workers,
    check_ws_url,
    load_file,
    parse_listen,
)
from .logsafe import JsonFormatter
from .tls import server_tls

EPILOG = """\
examples:
  python -m tools.gateway --listen 0.0.0.0:8765 \\
      --upstream ws://192.168.1.20:8000/xiaozhi/v1/ \\
      --upstream-ota http://192.168.1.20:8003/xiaozhi/ota/
  python -m tools.gateway --config gateway.json      # secrets, policies, several upstreams
  python -m tools.gateway --listen 0.0.0.0:8765 --tls-cert gw.crt --tls-key gw.key \\
      --upstream ws://192.168.1.20:8000/xiaozhi/v1/  # wss:// and https:// on one port

Point the device's OTA URL at http://<gateway>:8765/xiaozhi/ota/ (the reply sends it to
the gateway's WebSocket) or its ws_url at ws://<gateway>:8765/xiaozhi/v1/.
GET /healthz (upstream reachability) and GET /metrics (Prometheus) share the port.
See tools/gateway/config.py for every config-file key.
"""


def build_config(argv):
    p = argparse.ArgumentParser(
        prog="python -m tools.gateway",
        description="Edge gateway between xiaozhi-mpy devices (PCM audio) and stock xiaozhi "
                    "servers (Opus): transcoding WebSocket proxy, OTA proxy, signed device auth, "
                    "rate limits, blocked words, audit log, upstream failover.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="JSON config file (secrets, policies, upstreams)")
    p.add_argument("--listen", metavar="HOST:PORT", help="where devices connect, WebSocket and OTA on one port "
                   "(default 127.0.0.1:8765)")
    p.add_argument("--upstream", metavar="WS_URL", action="append",
                   help="xiaozhi server WebSocket URL; repeat for failover, first is preferred")
    p.add_argument("--upstream-ota", metavar="HTTP_URL", help="upstream OTA URL to proxy "
                   "(without it the gateway answers OTA requests itself)")
    p.add_argument("--public-url", metavar="WS_URL", help="WebSocket URL the OTA reply hands to devices "
                   "(default: ws://<Host header of the OTA request>/xiaozhi/v1/)")
    p.add_argument("--audit-log", metavar="FILE", help="append audit records (JSON lines) here; '-' = stdout")
    p.add_argument("--opus-bitrate", type=int, metavar="BPS",
                   help="uplink Opus bitrate (default 24000; 0 = libopus chooses)")
    p.add_argument("--opus-complexity", type=int, metavar="0-10", help="uplink Opus complexity (default 5)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    # -- TLS and logs (gwsec)
    p.add_argument("--tls-cert", metavar="PEM", help="certificate chain: serve wss:// and https:// (needs --tls-key)")
    p.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    p.add_argument("--log-format", default="text", choices=("text", "json"),
                   help="json: one JSON object per log line (for log collectors)")
    # Scaling: see "Deploying the gateway" in README.md.
    p.add_argument("--workers", type=int, metavar="N", help="gateway processes on the one port "
                   "(default: one per CPU core; 1 = a single process, no supervisor)")
    p.add_argument("--redis", metavar="URL", help="share the replay cache and connect limits across workers "
                   "and instances, e.g. redis://127.0.0.1:6379/0")
    p.add_argument("--redis-fail-open", action="store_true", help="Redis unreachable: accept signed tokens "
                   "without the shared replay check (default: refuse them)")
    p.add_argument("--upstream-pool", type=int, metavar="K", help="keep K warm upstream connections "
                   "(only for upstreams that do not need Device-Id at handshake; not the stock server)")
    p.add_argument("--trusted-proxy", metavar="ADDR", action="append",
                   help="address or CIDR of a reverse proxy (nginx) whose X-Real-IP / X-Forwarded-For "
                        "name the device's address; repeatable (default: none, the TCP peer counts)")
    a = p.parse_args(argv)

    cfg = Config()
    if a.config:
        load_file(a.config, cfg)
    if a.listen:
        cfg.listen_host, cfg.listen_port = parse_listen("--listen", a.listen)
    if a.upstream:
        cfg.upstreams = [check_ws_url("--upstream", u) for u in a.upstream]
    if a.upstream_ota is not None:
        cfg.upstream_ota = check_http_url("--upstream-ota", a.upstream_ota) if a.upstream_ota else ""
    if a.public_url:
        cfg.public_url = check_ws_url("--public-url", a.public_url)
    if a.audit_log is not None:
        cfg.audit_log = a.audit_log
    if a.opus_bitrate is not None:
        cfg.opus.bitrate = check_opus_bitrate("--opus-bitrate", a.opus_bitrate)
    if a.opus_complexity is not None:
        cfg.opus.complexity = check_opus_complexity("--opus-complexity", a.opus_complexity)
    if a.tls_cert is not None:
        cfg.tls.cert = a.tls_cert
    if a.tls_key is not None:
        cfg.tls.key = a.tls_key
    check_tls(cfg.tls)
    server_tls(cfg.tls)  # load the files now: a bad one is a usage error before any worker starts
    if a.workers is not None:
        cfg.workers = check_workers("--workers", a.workers)
    if a.redis is not None:
        cfg.redis.url = check_redis_url("--redis", a.redis) if a.redis else ""
    if a.redis_fail_open:
        cfg.redis.fail_open = True
    if a.upstream_pool is not None:
        if a.upstream_pool < 0:
            raise ConfigError(f"--upstream-pool must be >= 0, got {a.upstream_pool}")
        cfg.upstream_pool = a.upstream_pool
    if a.trusted_proxy:
        cfg.trusted_proxies = check_trusted_proxies("--trusted-proxy", a.trusted_proxy)
    if not cfg.upstreams:
        raise ConfigError("no upstream: give --upstream WS_URL or 'upstreams' in the config file")
    return cfg, a.log_level, a.log_format


def _announce(cfg, port, workers=1):
    ws, http = ("wss", "https") if cfg.tls.cert else ("ws", "http")
    print(f"gateway ready on {ws}://{cfg.listen_host}:{port}/xiaozhi/v1/ "
          f"(OTA: {http}://{cfg.listen_host}:{port}/xiaozhi/ota/)"
          + (f" with {workers} workers" if workers > 1 else ""), flush=True)
    if is_loopback(cfg.listen_host):
        print(f"gateway: note: {cfg.listen_host} is loopback, so devices on the network cannot reach it; "
              "use --listen 0.0.0.0:PORT to serve them", flush=True)


async def _run(cfg, reuse_port=False, on_ready=None):
    from .proxy import Gateway

    gw = Gateway(cfg)
    try:
        await gw.start(reuse_port=reuse_port)
    except OSError as e:
        raise RunError(f"cannot listen on {cfg.listen_host}:{cfg.listen_port}: {e.strerror or e}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before "ready", so a stop right after it is clean
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass
    # Only now: whoever waits for "ready" may send SIGTERM straight away.
    (on_ready or (lambda port: _announce(cfg, port)))(gw.port)
    await stop.wait()
    await gw.stop()


def is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv=None):
    try:
        cfg, level, log_format = build_config(sys.argv[1:] if argv is None else argv)
    except ConfigError as e:
        print(f"gateway: error: {e}", file=sys.stderr)
        return 2
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        import opuslib_next  # noqa: F401
    except (ImportError, OSError) as e:  # libopus missing: say what to install instead of a traceback
        print(f"gateway: FAILED: cannot load libopus ({e}); run scripts/setup or install libopus0",
              file=sys.stderr)
        return 1
    from . import workers

    n = cfg.workers or workers.cpu_count()
    try:
        if n > 1:
            return workers.run(cfg, n, level, lambda port: _announce(cfg, port, n), log_format)
        asyncio.run(_run(cfg))
    except ConfigError as e:
        print(f"gateway: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        print(f"gateway: FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
