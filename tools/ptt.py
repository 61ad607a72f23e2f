"""Push-to-talk from the terminal for the simulator: hold Space to talk, or
press Enter once to start and once more to stop.

A terminal sends no key-up, only the key again while it is held (autorepeat),
so Space counts as held while its repeats keep coming: the first repeat may
take up to FIRST_REPEAT_S, later ones come every few tens of ms.
"""

import os
import select
import sys
import threading
import time

FIRST_REPEAT_S = 0.7  # longer than the usual autorepeat delay (250-660 ms)
REPEAT_GAP_S = 0.2  # autorepeat is 25-40 keys a second; a longer gap means the key is up


class KeyPtt:
    """Keys and time in, button actions ("press"/"release") out."""

    def __init__(self):
        self.held = None  # None, "space" or "enter": what holds the button down
        self.deadline = None  # when a held Space counts as released

    def key(self, ch, now):
        if ch in ("\r", "\n"):
            if self.held is None:
                self.held = "enter"
                return ["press"]
            self.held = self.deadline = None
            return ["release"]
        if ch == " ":
            if self.held == "space":
                self.deadline = now + REPEAT_GAP_S
                return []
            if self.held is None:
                self.held = "space"
                self.deadline = now + FIRST_REPEAT_S
                return ["press"]
        return []

    def tick(self, now):
        if self.held == "space" and now >= self.deadline:
            self.held = self.deadline = None
            return ["release"]
        return []


def open_terminal():
    """The terminal to read keys from: stdin when it is one, else /dev/tty
    (when stdin is the mic pipe). None when there is no terminal."""
    if sys.stdin.isatty():
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    try:
        return open("/dev/tty", "rb", buffering=0)
    except OSError:
        return None


class Keyboard:
    """Reads keys from a terminal in cbreak mode on a thread and calls
    send("press"/"release"). The terminal's mode is restored by close()."""

    def __init__(self, term, send):
        import termios
        import tty

        self.term = term
        self.send = send
        self.ptt = KeyPtt()
        self._saved = termios.tcgetattr(term.fileno())
        tty.setcbreak(term.fileno())  # keys one by one, no echo; Ctrl-C still interrupts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        fd = self.term.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.05)
            now = time.monotonic()
            actions = []
            if ready:
                data = os.read(fd, 32)
                if not data:
                    return  # the terminal went away
                for ch in data.decode("latin-1"):
                    actions += self.ptt.key(ch, now)
            actions += self.ptt.tick(now)
            for act in actions:
                self.send(act)

    def close(self):
        import termios

        self._stop.set()
        self._thread.join(1)
        try:
            termios.tcsetattr(self.term.fileno(), termios.TCSADRAIN, self._saved)
        except termios.error:
            pass
        self.term.close()
