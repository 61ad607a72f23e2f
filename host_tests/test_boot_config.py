"""A missing, corrupt or half-written config.json (process killed mid-save)
still boots to a ready device, with one clear log line saying what happened,
and never prints a secret."""

import json
import os
import subprocess

from bootkit import HERE, MICROPYTHON, REPO, device, output, wait

SIM = {"clock_speed": 10}  # no "networks": the sim runs as if wired
GOOD = {"schema": 3, "board": "sim", "volume": 33, "ws_url": "ws://old.example/xiaozhi/v1/",
        "wifi": [{"ssid": "home", "password": "pa55-w0rd-xyz"}], "ws_token": "tok-zz-123"}


def _boot(tmp_path, config=None):
    with device(tmp_path, config, SIM) as dev:
        ready = wait(dev, "ready")
        for secret in ("pa55-w0rd-xyz", "tok-zz-123"):
            assert not any(secret in line for line in output(dev)), "\n".join(dev.log)
        return dev, ready["d"]


def test_missing_file(tmp_path):
    dev, ready = _boot(tmp_path)
    assert any("no config.json; starting from defaults" in line for line in dev.log)
    assert ready["ws_url"] == ""
    # The new Client-Id is kept, so the file exists now.
    assert json.loads((tmp_path / "config.json").read_text())["client_id"]


def test_corrupt_file_is_kept_and_defaults_used(tmp_path):
    text = json.dumps(GOOD)[:-30]  # cut off: not JSON any more
    dev, ready = _boot(tmp_path, text)
    line = next(x for x in dev.log if "corrupt" in x)
    assert " E config: config.json is corrupt (" in line and "kept as config.json.bad, using defaults" in line
    assert (tmp_path / "config.json.bad").read_text() == text
    assert ready["ws_url"] == ""


def test_bad_value_names_the_key(tmp_path):
    dev, _ = _boot(tmp_path, dict(GOOD, volume="loud"))
    assert any("config key 'volume' must be int, got str" in x for x in dev.log)


def test_killed_mid_save_keeps_previous_settings(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(GOOD))
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib" % (REPO, REPO))
    writer = subprocess.Popen([MICROPYTHON, os.path.join(HERE, "boot_writer.py")], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "MIDWRITE"
    finally:
        writer.kill()  # SIGKILL: no cleanup, exactly like a power cut
        writer.wait(10)
    partial = (tmp_path / "config.json.tmp").read_text()
    assert partial and not partial.endswith("}")
    dev, ready = _boot(tmp_path)
    assert any("discarding an unfinished save (config.json.tmp); previous settings kept" in x for x in dev.log)
    assert ready["ws_url"] == "ws://old.example/xiaozhi/v1/"
    assert json.loads((tmp_path / "config.json").read_text())["volume"] == 33
    assert not (tmp_path / "config.json.tmp").exists()


def test_power_cut_between_remove_and_rename(tmp_path):
    # FAT's save path removes the old file before the rename; only .tmp is left.
    (tmp_path / "config.json.tmp").write_text(json.dumps(GOOD))
    dev, ready = _boot(tmp_path)
    assert any("recovered settings from an interrupted save" in x for x in dev.log)
    assert ready["ws_url"] == "ws://old.example/xiaozhi/v1/"
    assert json.loads((tmp_path / "config.json").read_text())["volume"] == 33
