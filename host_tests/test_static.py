# Static checks (issue 6): every device file compiles for the chip, the ESP32 HAL
# and board profiles type-check against the pinned MicroPython stubs, ruff is
# clean, and the mip/freeze packaging covers every device file.
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from tools.dev import build, package, static
from tools.dev.errors import DevError

ROOT = build.ROOT


@pytest.mark.parametrize("rel", build.device_files())
def test_device_file_compiles_for_xtensawin(rel, tmp_path):
    build.compile_file(os.path.join(ROOT, rel), str(tmp_path / "out.mpy"), "xtensawin", rel)
    assert (tmp_path / "out.mpy").read_bytes()[:2] == b"M\x06"


def test_device_file_list_is_the_real_firmware():
    # The compile test above is parametrized by this list: an empty glob would skip it, not fail it.
    want = {"boot.py", "main.py", "firmware/app.py", static.HAL, "firmware/boards/bread_compact_s3.py",
            "lib/wsclient.py"}
    assert want <= set(build.device_files())
    with pytest.raises(DevError, match="no device files"):
        static.compile_errors(root=str(ROOT + "/no-such-dir"))


def test_device_files_are_globbed(tmp_path):
    (tmp_path / "firmware" / "deep").mkdir(parents=True)
    (tmp_path / "lib").mkdir()
    for rel in ("main.py", "firmware/__init__.py", "firmware/deep/x.py", "lib/y.py", "tools_not_device.py"):
        (tmp_path / rel).write_text("X = 1\n")
    assert build.device_files(str(tmp_path)) == ["firmware/__init__.py", "firmware/deep/x.py", "lib/y.py", "main.py"]


def test_compile_check_names_the_broken_file(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "good.py").write_text("import micropython\n@micropython.viper\ndef f(x: int) -> int:\n"
                                              "    return x + 1\n")
    (tmp_path / "lib" / "bad.py").write_text("def f(:\n")
    # A viper-only error: only the native emitter (-march) sees it; plain bytecode compiles would pass it.
    (tmp_path / "lib" / "badviper.py").write_text("import micropython\n@micropython.viper\ndef f(x: int) -> int:\n"
                                                  "    return x.nope\n")
    errs = dict(static.compile_errors("xtensawin", root=str(tmp_path)))
    assert set(errs) == {"lib/bad.py", "lib/badviper.py"}
    assert errs["lib/bad.py"].startswith("mpy-cross failed on lib/bad.py: ")


def test_hal_and_board_profiles_typecheck_against_esp32_stubs():
    targets = static.mypy_targets()
    assert static.HAL in targets and "firmware/boards/bread_compact_s3.py" in targets
    ok, out = static.run_mypy(targets)
    assert ok, out


def test_stubs_resolve_machine_and_catch_mistakes(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(
        "import asyncio\nimport sys\nfrom machine import I2S, Pin\nimport network\n\n\n"
        "def f():\n    p = Pin(5, Pin.OUT)\n    p.value(1)\n    flag = asyncio.ThreadSafeFlag()\n"
        "    i2s = I2S(0, sck=Pin(5), ws=Pin(4), sd=Pin(6), mode=I2S.RX, bits=32, format=I2S.MONO, rate=16000, "
        "ibuf=8000)\n    sys.print_exception(ValueError())\n    return flag, i2s, network.WLAN(network.STA_IF)\n")
    ok, out = static.run_mypy([str(good)])
    assert ok, out
    bad = tmp_path / "bad.py"
    bad.write_text("from machine import Pin\n\n\ndef f():\n    Pin(5).nonexistent()\n")
    ok, out = static.run_mypy([str(bad)])
    assert not ok
    assert '"Pin" has no attribute "nonexistent"' in out, out
    assert "import-not-found" not in out, out


def test_hal_is_required_once_the_app_exists(tmp_path):
    (tmp_path / "firmware" / "boards").mkdir(parents=True)
    (tmp_path / "firmware" / "boards" / "b.py").write_text("X = 1\n")
    assert static.mypy_targets(str(tmp_path)) == ["firmware/boards/b.py"]
    (tmp_path / "firmware" / "app.py").write_text("")
    with pytest.raises(DevError, match="firmware/hal/esp32.py is missing"):
        static.mypy_targets(str(tmp_path))


def test_ruff_is_clean():
    # ...on the code that matters: a clean run over a mis-set exclude would prove nothing.
    seen = static.ruff_files()
    for rel in ("boot.py", "firmware/app.py", static.HAL, "lib/wsclient.py", "tools/dev/cli.py",
                "host_tests/test_static.py", "manifest.py"):
        assert rel in seen, rel
    assert not any(f.startswith(".venv/") for f in seen)
    ok, out = static.run_ruff()
    assert ok, out


def test_ruff_would_catch_an_error(tmp_path):
    (tmp_path / "x.py").write_text("import os\n")
    ok, out = static.run_ruff(paths=[str(tmp_path / "x.py")])
    assert not ok and "F401" in out


def test_package_json_lists_every_device_file():
    with open(package.PATH) as f:
        pkg = json.load(f)
    listed = [u[0] for u in pkg["urls"]]
    assert sorted(listed) == build.device_files(), "package.json is stale: run python -m tools.dev package"
    for target, url in pkg["urls"]:
        assert target == url and os.path.isfile(os.path.join(ROOT, url)), url
    assert pkg["deps"] == [] and pkg["version"]


def test_manifest_freezes_every_device_module():
    calls = []
    env = {
        "include": lambda path: calls.append(("include", path)),
        "package": lambda name, files=None, base_path=".", opt=None: calls.append(("package", name, base_path)),
        "module": lambda name, base_path=".", opt=None: calls.append(("module", name, base_path)),
    }
    cwd = os.getcwd()
    os.chdir(ROOT)  # MicroPython's build runs a manifest from its own directory
    try:
        with open("manifest.py") as f:
            exec(compile(f.read(), "manifest.py", "exec"), env)
    finally:
        os.chdir(cwd)
    assert ("include", "$(PORT_DIR)/boards/manifest.py") in calls
    frozen = set()
    for c in calls:
        if c[0] == "package":
            top = os.path.join(ROOT, c[2], c[1])
            for dirpath, _, names in os.walk(top):
                frozen |= {os.path.relpath(os.path.join(dirpath, n), ROOT) for n in names if n.endswith(".py")}
        elif c[0] == "module":
            frozen.add(os.path.join(c[2], c[1]))
    want = {f for f in build.device_files() if f not in build.ENTRY}
    assert frozen == want


@pytest.mark.parametrize("cmd", ["", "flash", "deploy", "config", "repl", "logs", "check", "package"])
def test_cli_help(cmd):
    p = subprocess.run([sys.executable, "-m", "tools.dev", *cmd.split(), "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert p.returncode == 0 and "usage: python -m tools.dev" in p.stdout, p.stderr


def test_protocol_citations_name_real_sections():
    """Code and docs cite the protocol document as `docs/protocol.md §N`: every N
    must be one of its numbered headings (a stale number sends the reader nowhere)."""
    root = pathlib.Path(ROOT)
    doc = (root / "docs" / "protocol.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", doc, re.M))
    assert {"1.6", "11", "13"} <= sections, "no numbered headings found in docs/protocol.md"
    cited = {}
    for top in ("firmware", "lib", "tools", "host_tests", "docs", "deploy"):
        for path in sorted((root / top).rglob("*")):
            if path.suffix not in (".py", ".md") or not path.is_file():
                continue
            for n in re.findall(r"protocol(?:\.zh-CN)?\.md §(\d+(?:\.\d+)?)", path.read_text(encoding="utf-8")):
                cited.setdefault(n, []).append(str(path.relative_to(root)))
    assert len(cited) > 10, "found almost no protocol citations: is the pattern still right?"
    stale = {n: files for n, files in cited.items() if n not in sections}
    assert not stale, "citations of sections docs/protocol.md does not have: %s" % stale
