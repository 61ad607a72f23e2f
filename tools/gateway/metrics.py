"""Prometheus metrics of one gateway process, in the text exposition format 0.0.4.

The format is a few lines per metric, so it is written here rather than
pulled in as a dependency. Metrics are process-wide (one registry, as
prometheus-client does): with several worker processes, each serves its own.
Other modules count through the objects below, e.g. the shared store calls
redis_error() when a Redis command fails.
"""

import math
import threading


def _label_text(names, values):
    if not names:
        return ""
    esc = (str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, esc, strict=True)) + "}"


def _num(v):
    if v == math.inf:
        return "+Inf"
    return repr(round(v, 3)) if isinstance(v, float) and not v.is_integer() else str(int(v))


class _Metric:
    kind = ""

    def __init__(self, name, help_text, labels=()):
        self.name = name
        self.help = help_text
        self.labels = tuple(labels)
        self._values = {}  # label values tuple -> value
        self._lock = threading.Lock()  # the store may count from a worker thread

    def _key(self, labels):
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(labels)}")
        return tuple(labels[n] for n in self.labels)

    def value(self, **labels):
        return self._values.get(self._key(labels), 0)

    def lines(self):
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.labels:
            items = [((), 0)]
        for key, v in items:
            yield f"{self.name}{_label_text(self.labels, key)} {_num(v)}"


class Counter(_Metric):
    kind = "counter"

    def inc(self, n=1, **labels):
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + n


class Gauge(Counter):
    kind = "gauge"

    def dec(self, n=1, **labels):
        self.inc(-n, **labels)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name, help_text, buckets, labels=()):
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets)) + (math.inf,)

    def observe(self, v, **labels):
        key = self._key(labels)
        with self._lock:
            h = self._values.get(key)
            if h is None:
                h = self._values[key] = [[0] * len(self.buckets), 0, 0.0]  # bucket counts, count, sum
            for i, edge in enumerate(self.buckets):
                if v <= edge:
                    h[0][i] += 1
            h[1] += 1
            h[2] += v

    def value(self, **labels):
        """(count, sum) of the observations with these labels."""
        h = self._values.get(self._key(labels))
        return (h[1], h[2]) if h else (0, 0.0)

    def lines(self):
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            items = sorted((k, (list(h[0]), h[1], h[2])) for k, h in self._values.items())
        for key, (counts, count, total) in items:
            for edge, c in zip(self.buckets, counts, strict=True):
                yield f"{self.name}_bucket{_label_text(self.labels + ('le',), key + (_num(edge),))} {c}"
            yield f"{self.name}_sum{_label_text(self.labels, key)} {_num(total)}"
            yield f"{self.name}_count{_label_text(self.labels, key)} {count}"


class Registry:
    def __init__(self):
        self.metrics = []

    def add(self, metric):
        self.metrics.append(metric)
        return metric

    def render(self):
        return "".join(line + "\n" for m in self.metrics for line in m.lines())


REGISTRY = Registry()
SESSIONS_OPEN = REGISTRY.add(Gauge("xiaozhi_gateway_sessions_open", "Device sessions open now."))
SESSIONS = REGISTRY.add(Counter("xiaozhi_gateway_sessions_total",
                                "Device sessions ended, by the side that ended them.", ("side",)))
TURNS = REGISTRY.add(Counter("xiaozhi_gateway_turns_total", "TTS replies completed (tts stop from the upstream)."))
FRAMES = REGISTRY.add(Counter("xiaozhi_gateway_frames_total",
                              "Audio frames: up = from devices, down = to devices.", ("direction",)))
TRANSCODE_US = REGISTRY.add(Histogram(
    "xiaozhi_gateway_transcode_microseconds", "Time to transcode one audio frame or packet.",
    (50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000), ("direction",)))
AUTH_REFUSALS = REGISTRY.add(Counter("xiaozhi_gateway_auth_refusals_total",
                                     "Connects refused by the token check, by precise reason.", ("reason",)))
RATE_LIMIT_HITS = REGISTRY.add(Counter("xiaozhi_gateway_rate_limit_hits_total",
                                       "Connects or sessions refused by a rate limit.", ("limit",)))
UPSTREAM_FAILOVERS = REGISTRY.add(Counter(
    "xiaozhi_gateway_upstream_failovers_total", "Sessions served by an upstream other than the first one."))
UPSTREAM_KEEPALIVE_TIMEOUTS = REGISTRY.add(Counter(
    "xiaozhi_gateway_upstream_keepalive_timeouts_total", "Upstream links found dead by the keepalive."))
REDIS_ERRORS = REGISTRY.add(Counter("xiaozhi_gateway_redis_errors_total", "Failed Redis commands of the shared store."))


def redis_error():
    """Count one failed Redis command (called by the shared store)."""
    REDIS_ERRORS.inc()


def reason_label(reason):
    """A bounded label value from a reason: "token expired (301 s old, …)" -> "token expired"."""
    return reason.split(" (", 1)[0]
