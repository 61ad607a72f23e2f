"""State that several gateway processes share through Redis: the replay cache,
the connections-per-minute windows and the failed auths counted in them.

Without a Redis URL each gateway process keeps this state itself
(auth.ReplayCache, policy.RateLimits): right for one process, but with
several workers or instances a token could be replayed once per process and
a device could connect `limit` times per process. With one, every worker of
every instance sees the same state:

  <prefix>replay:<sha256 of the token>   SET NX with an expiry: a token is accepted once, anywhere
  <prefix>conn:ip:<ip>         sorted sets of connect times (Redis's clock, so
  <prefix>conn:dev:<device>    instances with skewed clocks agree), trimmed to 60 s;
                               before its token is checked a connect takes an
                               entry in conn:ip (check and take in one script, so
                               parallel guesses cannot all pass a half-full window):
                               a failed auth keeps it, an admitted connect turns it
                               into its connect entry; every process refuses the
                               IP once it is full

Messages per second stay per process: a session lives in one process, and a
Redis round trip per audio frame would cost more than the transcoding.

When Redis is unreachable (one log line when it goes, one when it is back):
  - the replay check fails closed by default: the connect is refused with
    "auth failed: replay cache unavailable"; with fail_open the token is
    accepted (this process's own ReplayCache still refuses local replays);
  - connect windows and failed-auth counts fall back to this process's own RateLimits.
"""

import hashlib
import logging
import os

import redis.asyncio as aioredis
import redis.exceptions

from . import metrics
from .config import redacted_redis_url

log = logging.getLogger("gateway.redis")

# Every script reads Redis's clock, so instances with skewed clocks agree.
_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Trim both windows, refuse if either is full, else count the connect in both.
# One script, so two instances admitting at the same moment cannot both squeeze in.
# ARGV[5], if not empty, is the entry the connect took before its token check
# (_IP_TAKE): given back first, so the connect is counted once.
_ADMIT = _NOW_MS + """
if ARGV[5] ~= '' then redis.call('ZREM', KEYS[1], ARGV[5]) end
local window = tonumber(ARGV[3])
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
end
for i = 1, 2 do
  local limit = tonumber(ARGV[i])
  if limit > 0 and redis.call('ZCARD', KEYS[i]) >= limit then return i end
end
for i = 1, 2 do
  if tonumber(ARGV[i]) > 0 then
    redis.call('ZADD', KEYS[i], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[i], window)
  end
end
return 0
"""

# Before the token check: 1 if the IP's window (connects and failed auths) is
# full, else take an entry in it (ARGV[3]) that counts this attempt. Checking
# and taking in one script is what bounds parallel guesses: with a check here
# and a count after the (failed) check, every attempt in flight saw the same
# half-full window.
_IP_TAKE = _NOW_MS + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 1 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 0
"""

_ERRORS = (redis.exceptions.RedisError, OSError, TimeoutError)


class SharedState:
    def __init__(self, url, limits, fail_open=False, prefix="xzgw:", timeout_s=1.0):
        self.url = url
        self.limits = limits  # policy.RateLimits: this process's windows, the fallback
        self.fail_open = fail_open
        self.prefix = prefix
        self.errors = 0  # Redis calls that failed, since start
        self._down = False
        self._redis = aioredis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._admit = self._redis.register_script(_ADMIT)
        self._ip_take = self._redis.register_script(_IP_TAKE)

    def _failed(self, what, e):
        self.errors += 1
        metrics.redis_error()
        if not self._down:
            self._down = True
            policy = "accepting tokens unchecked for replay" if self.fail_open else "refusing signed connects"
            log.error("redis %s unreachable during %s (%s: %s): %s; connect limits per process until it is back",
                      redacted_redis_url(self.url), what, type(e).__name__, e, policy)

    def _ok(self):
        if self._down:
            self._down = False
            log.warning("redis %s is reachable again: replay cache and connect limits shared",
                        redacted_redis_url(self.url))

    async def check(self):
        """Ping once at start, so an unreachable Redis is in the log before the first device."""
        try:
            await self._redis.ping()
        except _ERRORS as e:
            self._failed("start", e)
            return False
        log.info("shared state in redis %s", redacted_redis_url(self.url))
        return True

    async def first_use(self, token, ttl_s):
        """(ok, reason): ok if no process has accepted this token before."""
        try:
            # Hashed: whoever reads Redis gets no bearer tokens.
            key = self.prefix + "replay:" + hashlib.sha256(token.encode()).hexdigest()
            fresh = await self._redis.set(key, b"1", nx=True, ex=int(ttl_s))
        except _ERRORS as e:
            self._failed("the replay check", e)
            return (True, "ok") if self.fail_open else (False, "replay cache unavailable")
        self._ok()
        return (True, "ok") if fresh else (False, "token replayed")

    async def ip_take(self, ip):
        """Before a token check: (full, entry). full: the IP's window (connects
        and failed auths, in every process) has no room. Otherwise the attempt
        holds entry in it until admit() turns it into the connect; a failed auth
        simply keeps it. entry is None when there is no IP limit or Redis failed
        (then this process's own window decides, and counts a failure itself)."""
        lim = self.limits.conn_ip
        if not lim.limit:
            return False, None
        entry = os.urandom(8).hex()
        try:
            full = await self._ip_take(keys=[self.prefix + "conn:ip:" + ip], args=[lim.limit, 60000, entry])
        except _ERRORS as e:
            self._failed("the per-IP check", e)
            return lim.would_exceed(ip), None
        self._ok()
        return (True, None) if full else (False, entry)

    async def admit(self, ip, device_id, taken=None):
        """None if the connect is allowed (and counted everywhere), else the limit
        it hits. taken: the entry ip_take() gave this connect, given back first."""
        lim = self.limits
        try:
            hit = await self._admit(
                keys=[self.prefix + "conn:ip:" + ip, self.prefix + "conn:dev:" + device_id],
                args=[lim.conn_ip.limit, lim.conn_device.limit, 60000, os.urandom(8).hex(), taken or ""])
        except _ERRORS as e:
            self._failed("the connect limits", e)
            return lim.admit(ip, device_id)
        self._ok()
        if hit == 1:
            return f"connections per minute per IP ({lim.conn_ip.limit})"
        if hit == 2:
            return f"connections per minute per device ({lim.conn_device.limit})"
        return None

    async def close(self):
        await self._redis.aclose()
