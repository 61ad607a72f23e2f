"""The ESP32 board without PSRAM (firmware/boards/bread_compact_esp32.py): a
complete profile with the reference's wiring, selectable as config "board",
deployed and configured like the S3. (Flashing an ESP32 image at its 0x1000
offset is test_dev_flash.py's esp32 case.)"""

import json

from dev_cli import run_dev as dev
from test_dev_deploy import SOCAT, boards, on_board  # noqa: F401 - the fake-board fixture

from firmware import boards as fwboards
from firmware.boards import bread_compact_esp32 as esp32_board
from firmware.boards import bread_compact_s3 as s3_board


def _pins(board):
    return {k for k in vars(board) if k.isupper()}


def test_profile_has_every_setting_the_s3_profile_has():
    assert _pins(s3_board) <= _pins(esp32_board)
    assert (esp32_board.CHIP, esp32_board.HAL, esp32_board.LED_WS2812) == ("esp32", "esp32", False)
    # The reference bread-compact-esp32 simplex wiring.
    assert (esp32_board.MIC_WS, esp32_board.MIC_SCK, esp32_board.MIC_SD) == (25, 26, 32)
    assert (esp32_board.SPK_SD, esp32_board.SPK_SCK, esp32_board.SPK_WS) == (33, 14, 27)
    assert (esp32_board.BUTTON_PIN, esp32_board.LED_PIN) == (0, 2)
    pins = [esp32_board.MIC_SCK, esp32_board.MIC_WS, esp32_board.MIC_SD, esp32_board.SPK_SCK, esp32_board.SPK_WS,
            esp32_board.SPK_SD, esp32_board.BUTTON_PIN, esp32_board.LED_PIN, esp32_board.LAMP_PIN]
    assert len(set(pins)) == len(pins)
    assert not set(pins) & set(range(6, 12))  # GPIO 6-11 are the module's SPI flash
    with open(esp32_board.__file__) as f:
        assert "Heap budget" in f.read()  # the profile says what fits


def test_profile_is_a_known_board():
    assert "bread_compact_esp32" in fwboards.NAMES
    assert fwboards.load("bread_compact_esp32") is esp32_board


def test_deploy_selects_the_board_and_adpcm(boards, tmp_path):  # noqa: F811
    assert SOCAT, "socat is not installed: run scripts/setup (Debian package socat)"
    root = tmp_path / "board"
    b = boards(root)
    p = dev("deploy", *on_board(b), "--arch", "x64", "--board", "bread_compact_esp32", "--no-reset",
            "--ws-url", "ws://10.0.0.2:8080/xiaozhi/v1/")
    assert p.returncode == 0, p.stdout + p.stderr
    assert (root / "firmware" / "boards" / "bread_compact_esp32.mpy").exists()
    cfg = json.loads((root / "config.json").read_text())
    assert cfg["board"] == "bread_compact_esp32"
    cfgfile = tmp_path / "light.json"
    cfgfile.write_text('{"audio_format": "adpcm"}')
    p = dev("config", *on_board(b), "--config-file", str(cfgfile))
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads((root / "config.json").read_text())["audio_format"] == "adpcm"
