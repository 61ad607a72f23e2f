# Runs assert-style test modules (host_tests/upy/test_*.py) under MicroPython or
# CPython, in the style of micropython-lib's CI: each test_* function is called,
# coroutines are run with asyncio, and the run ends with "N passed, N failed".
#   micropython host_tests/upy_runner.py host_tests/upy/test_x.py [...]
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
_root = _here + "/.."
sys.path.insert(0, _root + "/lib")
sys.path.insert(0, _root)

if sys.implementation.name != "micropython":
    # CPython lacks MicroPython's ticks and const; give it the small subset the
    # pure modules use. Hardware-facing modules are never run this way.
    sys.path.insert(0, _here + "/compat")
    import compat_time  # noqa: F401

import asyncio


def _load(path):
    name = path.rsplit("/", 1)[-1][:-3]
    mod = {"__name__": name, "__file__": path}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), mod)
    return mod


def run(paths):
    passed = failed = 0
    for path in paths:
        mod = _load(path)
        for name in sorted(k for k in mod if k.startswith("test_")):
            try:
                r = mod[name]()
                if r is not None and hasattr(r, "send"):
                    asyncio.run(r)
                print("ok   %s::%s" % (path, name))
                passed += 1
            except Exception as e:
                print("FAIL %s::%s: %s %s" % (path, name, type(e).__name__, e))
                if hasattr(sys, "print_exception"):
                    sys.print_exception(e)
                else:
                    import traceback

                    traceback.print_exc()
                failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return failed == 0 and passed > 0


if __name__ == "__main__":
    sys.exit(0 if run(sys.argv[1:]) else 1)
