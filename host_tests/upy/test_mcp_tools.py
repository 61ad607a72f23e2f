# mcp_tools: the registry and argument binding. Runs under micropython and CPython.
from firmware.mcp_tools import Bool, Int, Registry, Str
from host_tests.upy.checks import raises


def test_schema_matches_reference_shape():
    r = Registry()

    @r.tool("self.audio_speaker.set_volume", "Set volume", Int("volume", 0, 100))
    def set_volume(volume):
        return True

    @r.tool("self.get_device_status", "Get device status")
    def status():
        return {}

    assert r.get("self.audio_speaker.set_volume").schema() == {
        "name": "self.audio_speaker.set_volume",
        "description": "Set volume",
        "inputSchema": {"type": "object", "properties": {"volume": {"type": "integer", "minimum": 0, "maximum": 100}},
                        "required": ["volume"]},
    }
    # required is omitted when empty, like the reference
    assert r.get("self.get_device_status").schema()["inputSchema"] == {"type": "object", "properties": {}}
    # the decorator returns the function itself
    assert set_volume(volume=1) is True


def test_defaults_are_not_required_and_shown():
    r = Registry()
    r.add("t", "d", lambda a, b, c: None, (Bool("a", False), Str("b", "x"), Int("c", 1, 5, default=3)))
    s = r.get("t").schema()["inputSchema"]
    assert "required" not in s
    assert s["properties"]["a"] == {"type": "boolean", "default": False}
    assert s["properties"]["b"] == {"type": "string", "default": "x"}
    assert s["properties"]["c"] == {"type": "integer", "default": 3, "minimum": 1, "maximum": 5}


def test_user_only_annotation_and_listing_order():
    r = Registry()
    r.add("a", "", lambda: 1)
    r.add("u1", "", lambda: 1, user_only=True)
    r.add("b", "", lambda: 1)
    r.add("u2", "", lambda: 1, user_only=True)
    assert [t.name for t in r.listed()] == ["a", "b"]
    assert [t.name for t in r.listed(True)] == ["a", "b", "u1", "u2"]
    assert r.get("u1").schema()["annotations"] == {"audience": ["user"]}
    assert "annotations" not in r.get("a").schema()
    assert len(r) == 4


def test_bind_fills_defaults_and_converts():
    r = Registry()
    t = r.add("t", "", lambda **kw: kw, (Bool("on"), Int("n", 0, 10, default=4), Str("s", "dflt")))
    assert t.bind({"on": True}) == {"on": True, "n": 4, "s": "dflt"}
    # JSON null counts as absent
    assert t.bind({"on": False, "n": None, "s": None}) == {"on": False, "n": 4, "s": "dflt"}
    # an integral JSON float is an integer; extra arguments are ignored
    kw = t.bind({"on": True, "n": 7.0, "junk": 1})
    assert kw == {"on": True, "n": 7, "s": "dflt"} and type(kw["n"]) is int


def test_bind_errors_name_the_problem():
    r = Registry()
    t = r.add("t", "", lambda **kw: kw, (Bool("on"), Int("volume", 0, 100, default=5), Str("text", "")))
    raises(lambda: t.bind({}), "Missing valid argument: on", "boolean")
    raises(lambda: t.bind({"on": 1}), "on", "expected boolean", "number")
    raises(lambda: t.bind({"on": "true"}), "on", "expected boolean", "string")
    raises(lambda: t.bind({"on": True, "volume": True}), "volume", "expected integer", "boolean")
    raises(lambda: t.bind({"on": True, "volume": "50"}), "volume", "expected integer", "string")
    raises(lambda: t.bind({"on": True, "volume": 50.5}), "volume", "expected integer", "50.5")
    raises(lambda: t.bind({"on": True, "volume": [1]}), "volume", "array")
    raises(lambda: t.bind({"on": True, "volume": 101}), "Value exceeds maximum allowed: 100", "volume=101")
    raises(lambda: t.bind({"on": True, "volume": -1}), "Value is below minimum allowed: 0", "volume=-1")
    raises(lambda: t.bind({"on": True, "text": 3}), "text", "expected string")
    # the edges are inside the range
    assert t.bind({"on": True, "volume": 0})["volume"] == 0
    assert t.bind({"on": True, "volume": 100})["volume"] == 100


def test_registration_mistakes_fail_early():
    r = Registry()
    r.add("x", "", lambda: 1)
    raises(lambda: r.add("x", "", lambda: 1), "x", "already registered")
    raises(lambda: r.add("", "", lambda: 1), "name")
    raises(lambda: r.add("has space", "", lambda: 1), "space")
    raises(lambda: r.add("y", None, lambda: 1), "description")
    raises(lambda: r.add("y", "", 5), "callable")
    raises(lambda: r.add("y", "", lambda: 1, ("volume",)), "Bool/Int/Str")
    raises(lambda: r.add("y", "", lambda v: 1, (Int("v"), Int("v"))), "v", "twice")
    raises(lambda: Int("v", 0, 10, default=11), "v", "bad default", "maximum")
    raises(lambda: Int("v", 5, 1), "minimum")
    raises(lambda: Bool("b", default=0), "b", "bad default")
    raises(lambda: Str("s", default=None), "s", "bad default")
    raises(lambda: Int("v", 0.5), "integers")
    raises(lambda: Str("s", description=object()), "s", "description must be a string")
    assert r.get("y") is None and len(r) == 1
