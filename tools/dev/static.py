"""Static checks for CI and for humans: `python -m tools.dev check`.

1. every device file compiles with mpy-cross for the chip (-march=xtensawin), so
   syntax and viper code are valid on the ESP32-S3;
2. the ESP32 HAL and the board profiles type-check with mypy against the pinned
   micropython-esp32-stubs (machine, network, esp32 ...) and MicroPython's own
   stdlib stubs (asyncio.ThreadSafeFlag, sys.print_exception ...);
3. ruff on the code pyproject.toml selects.
"""
import glob
import importlib.metadata
import os
import subprocess
import sys
import tempfile

from tools.dev import build
from tools.dev.build import ROOT
from tools.dev.errors import DevError

HAL = "firmware/hal/esp32.py"
BOARD_DEVICES = ("firmware/hal/ssd1306_display.py",)  # board-only HAL parts beside esp32.py


def compile_errors(arch="xtensawin", root=ROOT, files=None):
    """[(file, message)] for every device file mpy-cross rejects. No files at all is an error, not a pass."""
    files = build.device_files(root) if files is None else files
    if not files:
        raise DevError("no device files to compile under %s" % root)
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        for rel in files:
            try:
                build.compile_file(os.path.join(root, rel), os.path.join(tmp, "out.mpy"), arch, rel)
            except DevError as e:
                errors.append((rel, str(e)))
    return errors


def mypy_targets(root=ROOT):
    """The HAL and board profiles. Once firmware/app.py exists the ESP32 HAL must too."""
    boards = sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "firmware", "boards", "*.py"))
                    if not p.endswith("__init__.py"))
    hal = [HAL] if os.path.isfile(os.path.join(root, HAL)) else []
    if not hal and os.path.isfile(os.path.join(root, "firmware", "app.py")):
        raise DevError("%s is missing: the firmware has an app but no ESP32 HAL to type-check" % HAL)
    devices = [p for p in BOARD_DEVICES if os.path.isfile(os.path.join(root, p))]
    return hal + devices + boards


def _dist_dir(dist, marker):
    """Directory of an installed distribution's file whose path ends with `marker`."""
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        raise DevError("%s is not installed: run scripts/setup" % dist) from None
    for f in files:
        if str(f).replace("\\", "/").endswith(marker):
            return str(f.locate())[: -len(marker)].rstrip("/\\")
    raise DevError("%s has no %s; is the pinned version installed?" % (dist, marker))


def stub_paths(tmp):
    """(MYPYPATH dir, custom typeshed dir) for the MicroPython stubs.

    micropython-esp32-stubs installs bare .pyi modules (machine.pyi ...) at the top
    of site-packages, which mypy neither finds as a PEP 561 package nor accepts on
    MYPYPATH (it refuses site-packages there). So they are linked into a private
    dir. micropython-stdlib-stubs ships a typeshed-shaped 'stdlib/' tree that
    replaces CPython's, which is what gives asyncio and sys their MicroPython API.
    """
    site = _dist_dir("micropython-esp32-stubs", "machine.pyi")
    typeshed = _dist_dir("micropython-stdlib-stubs", "stdlib/VERSIONS")
    typeshed = os.path.dirname(typeshed) if os.path.basename(typeshed) == "stdlib" else typeshed
    typings = os.path.join(tmp, "typings")
    os.mkdir(typings)
    for name in os.listdir(site):
        if name.endswith(".pyi") and name != "__builtins__.pyi" or name == "_mpy_shed":
            os.symlink(os.path.join(site, name), os.path.join(typings, name))
    return typings, typeshed


def run_mypy(files, root=ROOT):
    """(ok, output) of mypy on `files` against the MicroPython stubs, with pyproject.toml's settings."""
    with tempfile.TemporaryDirectory() as tmp:
        typings, typeshed = stub_paths(tmp)
        env = dict(os.environ, MYPYPATH=os.pathsep.join([typings, os.path.join(root, "lib")]))
        cmd = [sys.executable, "-m", "mypy", "--config-file", os.path.join(root, "pyproject.toml"),
               "--custom-typeshed-dir", typeshed, "--cache-dir", os.path.join(tmp, "cache"), *files]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, timeout=300)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def _ruff(args, root):
    ruff = os.path.join(os.path.dirname(sys.executable), "ruff")
    cmd = [ruff if os.path.exists(ruff) else "ruff", "check", "--no-cache", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=300)


def run_ruff(root=ROOT, paths=()):
    p = _ruff(["--output-format", "concise", *paths], root)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def ruff_files(root=ROOT):
    """Repo-relative paths ruff checks under pyproject.toml's settings (so a clean run is known to cover them)."""
    p = _ruff(["--show-files"], root)
    return sorted(os.path.relpath(ln, root).replace(os.sep, "/") for ln in p.stdout.splitlines() if ln.strip())


def run_all(arch="xtensawin", only=None):
    ok = True
    if only in (None, "compile"):
        files = build.device_files()
        errs = compile_errors(arch, files=files)
        for _rel, msg in errs:
            print("compile: " + msg)
        print("compile: %d device files, %d failed (mpy-cross -march=%s)" % (len(files), len(errs), arch))
        ok &= not errs
    if only in (None, "mypy"):
        targets = mypy_targets()
        good, out = run_mypy(targets)
        print(out)
        print("mypy: %s against micropython-esp32-stubs: %s" % (", ".join(targets), "ok" if good else "FAILED"))
        ok &= good
    if only in (None, "ruff"):
        good, out = run_ruff()
        print(out)
        print("ruff: %s" % ("ok" if good else "FAILED"))
        ok &= good
    return ok
