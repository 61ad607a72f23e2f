"""Rate limits and the blocked-word filter.

Connections per minute: a sliding 60 s window of accepted connects per key
(device id, client IP). Refused attempts are not counted, so a device that
keeps retrying is let back in once its old connects age out.
Messages per second: a sliding 1 s window of device→gateway messages per key
(per device, and summed per IP). Exceeding it closes the session.
"""

import collections
import time


class WindowCounter:
    """Events per key in a sliding window of `window_s` seconds."""

    def __init__(self, limit, window_s, clock=time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._events = {}

    def _trim(self, key, now):
        q = self._events.get(key)
        if q is None:
            return None
        edge = now - self.window_s
        while q and q[0] <= edge:
            q.popleft()
        if not q:
            del self._events[key]
            return None
        return q

    def would_exceed(self, key):
        if not self.limit:
            return False
        q = self._trim(key, self.clock())
        return q is not None and len(q) >= self.limit

    def add(self, key):
        if not self.limit:
            return
        now = self.clock()
        self._trim(key, now)
        self._events.setdefault(key, collections.deque()).append(now)

    def hit(self, key):
        """Count one event; True if it is over the limit (the event is still counted)."""
        if not self.limit:
            return False
        now = self.clock()
        q = self._trim(key, now)
        if q is None:
            q = self._events[key] = collections.deque()
        q.append(now)
        return len(q) > self.limit

    def key_count(self):
        """How many keys have events in the window (aged-out keys are dropped)."""
        return len(self._events)


class RateLimits:
    """The four limits of the config's "limits" section; 0 turns one off."""

    def __init__(self, limits, clock=time.monotonic):
        self.conn_device = WindowCounter(limits.connections_per_minute_per_device, 60.0, clock)
        self.conn_ip = WindowCounter(limits.connections_per_minute_per_ip, 60.0, clock)
        self.msg_device = WindowCounter(limits.messages_per_second_per_device, 1.0, clock)
        self.msg_ip = WindowCounter(limits.messages_per_second_per_ip, 1.0, clock)

    def admit(self, ip, device_id):
        """None if the connect is allowed (and counted), else the limit it hits."""
        if self.conn_ip.would_exceed(ip):
            return f"connections per minute per IP ({self.conn_ip.limit})"
        if self.conn_device.would_exceed(device_id):
            return f"connections per minute per device ({self.conn_device.limit})"
        self.conn_ip.add(ip)
        self.conn_device.add(device_id)
        return None

    def message(self, ip, device_id):
        """None while within limits, else the limit this message broke."""
        over_dev = self.msg_device.hit(device_id)
        over_ip = self.msg_ip.hit(ip)
        if over_dev:
            return f"messages per second per device ({self.msg_device.limit})"
        if over_ip:
            return f"messages per second per IP ({self.msg_ip.limit})"
        return None


class BlockedWords:
    """Case-insensitive substring match of recognised speech (stt text)."""

    def __init__(self, words):
        self.words = [w.lower() for w in words if w]

    def find(self, text):
        if not self.words or not isinstance(text, str):
            return None
        low = text.lower()
        for w in self.words:
            if w in low:
                return w
        return None
