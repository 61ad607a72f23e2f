# MCP tool registry. One decorator call describes a tool completely: name,
# description, typed parameters and the user-only flag, next to the function
# that implements it, so a schema can never drift from its handler.
#
#   from firmware.mcp_tools import Int
#
#   @registry.tool("self.audio_speaker.set_volume", "Set the speaker volume",
#                  Int("volume", 0, 100))
#   def set_volume(volume):
#       ...
#       return True
#
# Handlers get their arguments as keywords, already type-checked, range-checked
# and with defaults filled in. They return bool, int, str, a dict/list (sent as
# compact JSON text) or None (reads as "true"), may be `async def`, and report a
# failure by raising; ToolError's text reaches the caller unchanged.

BOOLEAN = "boolean"
INTEGER = "integer"
STRING = "string"

# Names as JSON calls them, for error messages about what the caller sent.
_JSON_TYPES = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}

_NO_DEFAULT = object()


class ToolError(Exception):
    """Raise from a tool to fail with exactly this text (no exception type prefix)."""


class ArgError(ValueError):
    """An argument the caller sent does not fit the tool's schema."""


def _json_type(value):
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), type(value).__name__)


class Param:
    """One typed tool argument. A parameter without a default is required."""

    def __init__(self, name, kind, default=_NO_DEFAULT, minimum=None, maximum=None, description=None):
        if not isinstance(name, str) or not name:
            raise ValueError("parameter name must be a non-empty string")
        if kind not in (BOOLEAN, INTEGER, STRING):
            raise ValueError("parameter %s: unknown type %r" % (name, kind))
        if (minimum is not None or maximum is not None) and kind != INTEGER:
            raise ValueError("parameter %s: only integers take minimum/maximum" % name)
        for bound in (minimum, maximum):
            if bound is not None and type(bound) is not int:
                raise ValueError("parameter %s: minimum/maximum must be integers" % name)
        if minimum is not None and maximum is not None and minimum > maximum:
            raise ValueError("parameter %s: minimum %d > maximum %d" % (name, minimum, maximum))
        if description is not None and not isinstance(description, str):
            raise ValueError("parameter %s: description must be a string" % name)
        self.name = name
        self.kind = kind
        self.minimum = minimum
        self.maximum = maximum
        self.description = description
        self.required = default is _NO_DEFAULT
        self.default = None
        if not self.required:
            # A bad default is a programming error: fail at registration, not at call time.
            try:
                self.default = self.check(default)
            except ArgError as e:
                raise ValueError("parameter %s: bad default: %s" % (name, e))

    def schema(self):
        s = {"type": self.kind}
        if not self.required:
            s["default"] = self.default
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        if self.description:
            s["description"] = self.description
        return s

    def check(self, value):
        """Return value converted to this parameter's type or raise ArgError naming the problem."""
        # Exact types, not isinstance: CPython counts True as an int (MicroPython
        # does not), and a JSON true must pass for an integer on neither.
        t = type(value)
        if self.kind == BOOLEAN:
            if t is not bool:
                raise ArgError("Invalid argument %s: expected boolean, got %s" % (self.name, _json_type(value)))
            return value
        if self.kind == STRING:
            if t is not str:
                raise ArgError("Invalid argument %s: expected string, got %s" % (self.name, _json_type(value)))
            return value
        if t is float:
            # JSON has one number type; 50.0 is an integer, 50.5 is not (the
            # reference truncates it, which silently changes what was asked for).
            try:
                as_int = int(value)
            except (OverflowError, ValueError):
                as_int = None
            if as_int is None or as_int != value:
                raise ArgError("Invalid argument %s: expected integer, got %r" % (self.name, value))
            value = as_int
        elif t is not int:
            raise ArgError("Invalid argument %s: expected integer, got %s" % (self.name, _json_type(value)))
        if self.minimum is not None and value < self.minimum:
            raise ArgError("Value is below minimum allowed: %d (%s=%d)" % (self.minimum, self.name, value))
        if self.maximum is not None and value > self.maximum:
            raise ArgError("Value exceeds maximum allowed: %d (%s=%d)" % (self.maximum, self.name, value))
        return value


def Bool(name, default=_NO_DEFAULT, description=None):
    return Param(name, BOOLEAN, default, description=description)


def Int(name, minimum=None, maximum=None, default=_NO_DEFAULT, description=None):
    return Param(name, INTEGER, default, minimum, maximum, description)


def Str(name, default=_NO_DEFAULT, description=None):
    return Param(name, STRING, default, description=description)


class Tool:
    def __init__(self, name, description, fn, params, user_only):
        self.name = name
        self.description = description
        self.fn = fn
        self.params = params
        self.user_only = user_only

    def schema(self):
        """The tools/list entry, in the reference's shape (docs/protocol.md §8.3)."""
        props = {}
        required = []
        for p in self.params:
            props[p.name] = p.schema()
            if p.required:
                required.append(p.name)
        inp = {"type": "object", "properties": props}
        if required:
            inp["required"] = required
        s = {"name": self.name, "description": self.description, "inputSchema": inp}
        if self.user_only:
            s["annotations"] = {"audience": ["user"]}
        return s

    def bind(self, arguments):
        """Keyword arguments for fn from the caller's JSON object; ArgError on the first problem.

        JSON null counts as absent, so an optional argument sent as null gets its default.
        Unknown argument names are ignored: language models add stray ones.
        """
        kw = {}
        for p in self.params:
            v = arguments.get(p.name)
            if v is None:
                if p.required:
                    raise ArgError("Missing valid argument: %s (%s)" % (p.name, p.kind))
                kw[p.name] = p.default
            else:
                kw[p.name] = p.check(v)
        return kw


class Registry:
    """Tools in registration order. Listing shows user-only tools last, like the
    reference (common tools, then board tools, then user-only), and keeps that
    order stable so the server's prompt cache stays valid across sessions."""

    def __init__(self):
        self._tools = []
        self._by_name = {}

    def add(self, name, description, fn, params=(), user_only=False):
        if not isinstance(name, str) or not name or " " in name:
            raise ValueError("tool name must be a non-empty string without spaces, got %r" % (name,))
        if name in self._by_name:
            raise ValueError("tool %s is already registered" % name)
        if not isinstance(description, str):
            raise ValueError("tool %s: description must be a string" % name)
        if not callable(fn):
            raise ValueError("tool %s: handler is not callable" % name)
        seen = []
        for p in params:
            if not isinstance(p, Param):
                raise ValueError("tool %s: parameters must be Bool/Int/Str, got %r" % (name, p))
            if p.name in seen:
                raise ValueError("tool %s: parameter %s given twice" % (name, p.name))
            seen.append(p.name)
        t = Tool(name, description, fn, tuple(params), bool(user_only))
        self._tools.append(t)
        self._by_name[name] = t
        return t

    def tool(self, name, description, *params, user_only=False):
        """Decorator form of add(); returns the function unchanged."""

        def deco(fn):
            self.add(name, description, fn, params, user_only)
            return fn

        return deco

    def get(self, name):
        return self._by_name.get(name)

    def listed(self, with_user=False):
        """Tools in listing order: AI-visible first, then user-only (when asked for)."""
        out = [t for t in self._tools if not t.user_only]
        if with_user:
            out.extend(t for t in self._tools if t.user_only)
        return out

    def __len__(self):
        return len(self._tools)
