"""xiaozhi edge gateway: lets a PCM-speaking MicroPython device use stock
Opus-only xiaozhi servers.

    device --ws (pcm, framing v1/2/3)--> gateway --ws (opus, v1)--> xiaozhi server
    device --POST /xiaozhi/ota/------->  gateway --POST----------->  upstream OTA

Modules: config (file + CLI settings), auth (signed device tokens), policy
(rate limits, blocked words), audit (JSON-lines audit log), transcode
(PCM <-> Opus), upstreams (failover and health), ota_proxy (HTTP side),
health (GET /healthz), metrics (GET /metrics, Prometheus text), logsafe
(unforgeable log lines, JSON log format), tls (the listener's certificate),
clientip (the device's address behind a trusted proxy), proxy (the listener
and per-device sessions); scaling: store (replay cache and connect limits shared in Redis),
workers (N processes on one port, supervised), warm (pre-opened upstream
connections). Shared with the other host tools: tools/common (framing, tokens,
WAV). Run: python -m tools.gateway --help
"""
