# config keeps only the values and get() resident: its checks and its file
# are loaded for each call and dropped after it (firmware/resident.py call()).
import os
import sys

from firmware import config, resident

_P = "/tmp/xz_cfg_demand_%d.json" % int.from_bytes(os.urandom(4), "big")
_HELPERS = ("firmware.config_schema", "firmware.config_file")


def _loaded():
    return [m for m in _HELPERS if m in sys.modules]


def _clean():
    for s in ("", ".tmp"):
        try:
            os.remove(_P + s)
        except OSError:
            pass


def test_a_load_a_set_and_a_save_leave_no_helper_loaded():
    _clean()
    try:
        c = config.load(_P)
        assert _loaded() == []
        c.set("volume", 41)
        assert _loaded() == []
        c.save()
        assert _loaded() == []
        assert config.Config(_P, {"volume": 1}).get("volume") == 1 and _loaded() == []
    finally:
        _clean()


def test_the_second_use_loads_them_again():
    _clean()
    try:
        c = config.load(_P)
        for volume in (10, 20):
            c.set("volume", volume)
            c.save()
            assert config.load(_P).get("volume") == volume
        # The error from a reloaded check is still the class callers catch.
        for _ in range(2):
            try:
                c.set("volume", 101)
            except config.ConfigError as e:
                assert "volume" in str(e)
            else:
                raise AssertionError("volume 101 accepted")
        assert c.get("volume") == 20 and _loaded() == []
    finally:
        _clean()


def test_a_helper_loaded_outright_stays_until_drop():
    # Boot imports the checks outright (firmware/startup.py): its calls keep them.
    from firmware import config_schema  # noqa: F401

    c = config.Config(_P)
    c.set("volume", 5)
    assert _loaded() == ["firmware.config_schema"]
    resident.drop(resident.ON_DEMAND)
    assert _loaded() == []
    c.set("volume", 6)
    assert c.get("volume") == 6 and _loaded() == []


def test_call_drops_only_on_demand_modules():
    # A module a call happens to import first that is not ON_DEMAND (here the
    # boards, which the checks read) stays: it may hold state the session needs.
    resident.drop(("firmware.boards",))
    assert resident.call("firmware.config_schema", "check", "board", "sim") is None
    assert "firmware.boards" in sys.modules and _loaded() == []


def test_call_drops_on_demand_modules_when_it_raises():
    try:
        resident.call("firmware.config_file", "save", "/nonexistent-xz-dir/config.json", {})
    except config.ConfigError as e:
        assert "could not save" in str(e)
    else:
        raise AssertionError("saved into a missing directory")
    assert _loaded() == []
