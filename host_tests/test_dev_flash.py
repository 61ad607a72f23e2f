# `python -m tools.dev flash` against esp32-mock-bootloader as a virtual ESP32-S3
# and ESP32. The mock's SLIP server runs in a thread here with a flash image this
# test owns, so the written bytes and offset are read straight from its state.
import socket
import struct
import threading

import pytest
from dev_cli import assert_one_line_error, run_dev
from esp32_mock_bootloader import server as mock

from tools.dev import image, ports
from tools.dev.errors import DevError

CHIP_IDS = {"esp32": 0, "esp32s3": 9, "esp32c3": 5}


class MockBoard:
    """A TCP port that speaks the ESP ROM bootloader protocol; `flash` is its SPI flash."""

    def __init__(self, chip):
        self.flash = mock.FlashImage()
        self.stop = threading.Event()
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.srv.settimeout(0.2)
        self.url = "socket://127.0.0.1:%d" % self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, args=(chip,), daemon=True)
        self.thread.start()

    def _serve(self, chip):
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except (socket.timeout, OSError):
                continue
            mock.handle_client(mock.BootloaderConnection(sock=conn), self.stop, chip, flash=self.flash)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.srv.close()


@pytest.fixture
def board(request):
    b = MockBoard(request.param)
    yield b
    b.close()


def make_image(chip_id, app_size=4096):
    """A small well-formed merged image: header, one segment, partition table at 0x8000."""
    seg = bytes(range(256)) * (app_size // 256)
    header = struct.pack("<BBBBI", 0xE9, 1, 2, 0x20, 0x40080000)
    ext = struct.pack("<B3sHBHH4sB", 0xEE, b"\0\0\0", chip_id, 0, 0, 0xFFFF, b"\0" * 4, 0)
    body = header + ext + struct.pack("<II", 0x3FFB0000, len(seg)) + seg
    pt = 0x8000 - image.offset_for(image.chip_name(chip_id))
    body += b"\xff" * (pt - len(body)) + b"\xaa\x50\x01\x00" + b"\x00" * 28
    return body + b"\xff" * 256


def run_flash(*args):
    return run_dev("flash", *args, timeout=60)


def mock_args(board):
    return ["--port", board.url, "--before", "no-reset", "--after", "no-reset", "--connect-attempts", "1"]


@pytest.mark.parametrize("board,offset", [("esp32s3", 0x0), ("esp32", 0x1000)], indirect=["board"])
def test_flash_writes_image_at_chip_offset_and_verifies(board, offset, tmp_path):
    chip = "esp32s3" if offset == 0 else "esp32"
    data = make_image(CHIP_IDS[chip])
    path = tmp_path / "fw.bin"
    path.write_bytes(data)
    p = run_flash(str(path), *mock_args(board))
    assert p.returncode == 0, p.stdout + p.stderr
    assert bytes(board.flash.data[offset:offset + len(data)]) == data
    # Nothing below the offset was touched (for the ESP32 that is the first 4 KiB).
    assert bytes(board.flash.data[:offset]) == b"\xff" * offset
    assert bytes(board.flash.data[offset + len(data):offset + len(data) + 4096]) == b"\xff" * 4096
    assert "at 0x%x" % offset in p.stdout
    assert "Verification successful" in p.stdout


@pytest.mark.parametrize("board", ["esp32s3"], indirect=True)
def test_erase_clears_the_rest_of_flash(board, tmp_path):
    board.flash.data[0x200000:0x200004] = b"junk"
    path = tmp_path / "fw.bin"
    path.write_bytes(make_image(9))
    p = run_flash(str(path), *mock_args(board), "--no-verify")
    assert p.returncode == 0, p.stdout + p.stderr
    assert bytes(board.flash.data[0x200000:0x200004]) == b"junk"
    p = run_flash(str(path), *mock_args(board), "--erase", "--baud", "921600")
    assert p.returncode == 0, p.stdout + p.stderr
    assert bytes(board.flash.data[0x200000:0x200004]) == b"\xff" * 4


@pytest.mark.parametrize("board", ["esp32"], indirect=True)
def test_wrong_chip_is_refused_before_writing(board, tmp_path):
    path = tmp_path / "s3.bin"
    path.write_bytes(make_image(9))
    assert_one_line_error(run_flash(str(path), *mock_args(board)), "built for ESP32-S3 but the board", "is an ESP32")
    assert bytes(board.flash.data[:0x10000]) == b"\xff" * 0x10000


def test_missing_image(tmp_path):
    assert_one_line_error(run_flash(str(tmp_path / "nope.bin"), "--port", "socket://127.0.0.1:1"), "not found")


@pytest.mark.parametrize("content,word", [
    (b"hello, this is a text file\n" * 4, "not an ESP firmware image"),
    (b"\x7fELF" + b"\0" * 60, "ELF"),
    (b"UF2\n" + b"\0" * 60, "UF2"),
    (b"\xe9", "not an ESP firmware image"),
])
def test_non_image_file(tmp_path, content, word):
    path = tmp_path / "x.bin"
    path.write_bytes(content)
    assert_one_line_error(run_flash(str(path), "--port", "socket://127.0.0.1:1"), word)


def test_missing_port(tmp_path):
    path = tmp_path / "fw.bin"
    path.write_bytes(make_image(9))
    assert_one_line_error(run_flash(str(path), "--port", str(tmp_path / "ttyUSB9")), "does not exist")


def test_silent_device(tmp_path):
    # Accepts the connection and never answers, like a board that is not in its bootloader.
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        path = tmp_path / "fw.bin"
        path.write_bytes(make_image(9))
        url = "socket://127.0.0.1:%d" % srv.getsockname()[1]
        p = run_flash(str(path), "--port", url, "--before", "no-reset", "--connect-attempts", "1")
        assert_one_line_error(p, "no ESP bootloader answered", "Hold BOOT")
    finally:
        srv.close()


def test_app_only_image_warns(tmp_path):
    data = make_image(9)[:0x1000]
    path = tmp_path / "app.bin"
    path.write_bytes(data)
    img = image.load(str(path))
    assert img.chip == "ESP32-S3"
    assert "application-only" in img.warnings()[0]


def test_offsets_per_chip():
    assert image.offset_for("ESP32-S3") == 0
    assert image.offset_for("ESP32-C3") == 0
    assert image.offset_for("ESP32") == 0x1000


class _Port:
    def __init__(self, device, vid):
        self.device, self.vid = device, vid


def test_port_choice_never_guesses(monkeypatch, capsys):
    monkeypatch.setattr(ports.list_ports, "comports", lambda: [])
    with pytest.raises(DevError, match="no serial port found.*--port"):
        ports.choose(None)
    acm, usb, uart = _Port("/dev/ttyACM0", 0x303A), _Port("/dev/ttyUSB0", 0x10C4), _Port("/dev/ttyS0", None)
    monkeypatch.setattr(ports.list_ports, "comports", lambda: [acm, usb, uart])
    with pytest.raises(DevError, match=r"several serial ports found \(/dev/ttyACM0, /dev/ttyUSB0\).*--port"):
        ports.choose(None)
    monkeypatch.setattr(ports.list_ports, "comports", lambda: [acm, uart])
    assert ports.choose(None) == "/dev/ttyACM0"
    assert "only serial port found" in capsys.readouterr().out
