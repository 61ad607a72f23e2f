# Helpers shared by the assert-style tests in this folder (run under MicroPython
# and CPython by upy_runner.py, which puts the repo root on sys.path).


def raises(fn, *words):
    """Call fn, which must raise ValueError (or a subclass) whose text holds
    every one of words; returns that text."""
    try:
        fn()
    except ValueError as e:
        msg = str(e)
        for w in words:
            assert w in msg, (w, msg)
        return msg
    raise AssertionError("no ValueError, expected one mentioning %r" % (words,))
