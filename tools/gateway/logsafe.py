"""Log lines that a client cannot forge, as text or as JSON.

Device ids, client ids, close reasons and query parameters come from whoever
reaches the port; a newline in one of them would start a fake log line. The
filter escapes control characters (and bounds the length) of every string
argument of a gateway log record, so each record stays one line.
"""

import json
import logging

MAX_ARG_CHARS = 200
_LOGGERS = ("gateway", "gateway.upstream", "gateway.ota", "gateway.audit", "gateway.session")


def safe(text, limit=MAX_ARG_CHARS):
    """text with control characters shown as escapes (\\n, \\x1b …), cut to limit characters."""
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable() and len(text) <= limit:
        return text
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return out + ("…" if len(text) > limit else "")


class SafeArgs(logging.Filter):
    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(safe(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: safe(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install():
    """Attach the filter to the gateway's loggers (a logger's filters do not cover its children)."""
    for name in _LOGGERS:
        lg = logging.getLogger(name)
        if not any(isinstance(f, SafeArgs) for f in lg.filters):
            lg.addFilter(SafeArgs())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus the record's
    `fields` (logger.info(..., extra={"fields": {...}}), e.g. the session end)."""

    def format(self, record):
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str)
