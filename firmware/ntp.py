# Set the clock from NTP once Wi-Fi is up, before the first checked TLS
# connection. The esp32 build checks certificate dates (mbedTLS with
# MBEDTLS_HAVE_TIME_DATE) against the RTC, which reads 2000-01-01 after every
# power-on: until the clock is set, every https/wss certificate is "not yet
# valid". Uses ntptime (frozen into the stock esp32 build), whose query blocks
# for up to ntptime.timeout (1 s) per try; at boot nothing else needs the loop.
try:
    import asyncio
except ImportError:  # pragma: no cover
    import uasyncio as asyncio

from firmware import clock, log

TRIES = 3
RETRY_MS = 2000
RETRY_LATER_MS = 60000  # after boot, while the clock is still unset
_TAG = "ntp"


def checked_tls(cfg):
    """Whether a checked TLS connection is coming (https OTA or wss server)."""
    if not cfg.get("tls_verify"):
        return False
    return cfg.get("ota_url").startswith("https://") or cfg.get("ws_url").startswith("wss://")


async def set_clock(cfg, tries=TRIES):
    """Ask cfg's ntp_host up to `tries` times. -> True once the clock is set."""
    host = cfg.get("ntp_host")
    if not host:
        return False
    try:
        import ntptime
    except ImportError:  # the unix port: its clock is the host's already
        log.info(_TAG, "no ntptime module here; the clock is left as it is")
        return False
    ntptime.host = host
    for n in range(1, tries + 1):
        try:
            secs = ntptime.time()  # seconds since this port's epoch
        except (OSError, OverflowError, IndexError, ValueError) as e:  # timeout, DNS, bad reply
            log.warn(_TAG, "no answer from NTP server %s (try %d of %d): %s" % (host, n, tries, e))
            if n < tries:
                await clock.sleep_ms(RETRY_MS)
            continue
        clock.set_time((secs + clock.EPOCH_SHIFT) * 1000)
        log.info(_TAG, "clock set from %s: %s UTC" % (host, _stamp()))
        log.event("ntp", {"host": host, "tries": n})
        return True
    return False


async def bring_up(cfg):
    """Boot step: set the clock, or say what that means and keep trying in
    the background."""
    if await set_clock(cfg):
        return True
    if not cfg.get("ntp_host"):
        if checked_tls(cfg):
            log.warn(_TAG, "ntp_host is empty: until something sets the clock, https/wss certificate "
                           "checks fail (the clock starts at 2000-01-01)")
        return False
    if not checked_tls(cfg):
        log.warn(_TAG, "clock not set; the OTA reply's server_time will set it")
        return False
    log.error(_TAG, "clock not set (NTP server %s unreachable): https/wss certificate checks fail "
                    "until it answers; retrying every %d s" % (cfg.get("ntp_host"), RETRY_LATER_MS // 1000))
    asyncio.create_task(_retry(cfg))
    return False


async def _retry(cfg):
    while True:
        await clock.sleep_ms(RETRY_LATER_MS)
        if await set_clock(cfg, tries=1):
            return


def _stamp():
    import time

    t = time.gmtime()
    return "%04d-%02d-%02d %02d:%02d:%02d" % t[:6]
