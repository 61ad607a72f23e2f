# The face on the optional 128x64 monochrome display (SSD1306 on a board, a
# file per frame in the simulator): a state icon and a short ASCII status on
# the top line, and the emotion's face below, drawn with MicroPython's
# framebuf into one preallocated buffer in the SSD1306's page layout
# (MONO_VLSB: 8 pages of 128 bytes).
#
# Screen.set() runs from the state machine and the message handlers: it only
# records what to show and wakes the screen task, which draws and hands the
# buffer to the HAL display page by page, yielding between pages, so an I2C
# transfer never holds up the audio tasks. Setting what is already shown
# returns at once and allocates nothing (host_tests/test_voice_heap.py).
import asyncio
from array import array

import framebuf

from firmware import faces

WIDTH = 128
HEIGHT = 64
_TOP = 10  # the status line's height
_EYE_Y = 30
_EYE_DX = 26  # eye centres at 64 -/+ this
_MOUTH_Y = 50
_MAX_TEXT = (WIDTH - 12) // 8  # characters after the icon

# Polygons for framebuf.poly, made once.
_HEART = array("h", (0, 3, 3, 0, 6, 3, 9, 0, 12, 3, 6, 10))
_SPEAKER = array("h", (0, 3, 3, 3, 7, 0, 7, 9, 3, 6, 0, 6))


class Face:
    """Draws into a framebuf.FrameBuffer; owns nothing else."""

    def __init__(self):
        self.buf = bytearray(WIDTH * HEIGHT // 8)
        self.fb = framebuf.FrameBuffer(self.buf, WIDTH, HEIGHT, framebuf.MONO_VLSB)

    def draw(self, state, emotion, text):
        fb = self.fb
        fb.fill(0)
        self._icon(state)
        fb.text(text[:_MAX_TEXT], 12, 1, 1)
        fb.hline(0, _TOP + 1, WIDTH, 1)
        eyes, mouth = faces.face(emotion)
        self._eye(eyes, 64 - _EYE_DX, False)
        self._eye(eyes, 64 + _EYE_DX, True)
        self._mouth(mouth)

    def _icon(self, state):
        fb = self.fb
        if state == "listening":  # a microphone
            fb.ellipse(4, 3, 2, 3, 1, True)
            fb.ellipse(4, 4, 4, 4, 1, False, 12)
            fb.vline(4, 8, 2, 1)
        elif state == "speaking":
            fb.poly(0, 0, _SPEAKER, 1, True)
            fb.vline(9, 2, 6, 1)
        elif state in ("connecting", "starting", "wifi_configuring"):  # Wi-Fi arcs
            fb.ellipse(4, 9, 8, 8, 1, False, 3)
            fb.ellipse(4, 9, 5, 5, 1, False, 3)
            fb.rect(3, 7, 3, 3, 1, True)
        elif state in ("error", "fatal_error"):
            fb.rect(3, 0, 3, 6, 1, True)
            fb.rect(3, 8, 3, 2, 1, True)
        elif state in ("activation", "activating"):  # a key
            fb.ellipse(2, 4, 2, 2, 1, False)
            fb.hline(4, 4, 6, 1)
            fb.vline(8, 4, 3, 1)
        else:  # idle: a small dot
            fb.rect(3, 3, 3, 3, 1, True)

    def _eye(self, kind, x, right):
        fb = self.fb
        y = _EYE_Y
        if kind == "dot":
            fb.ellipse(x, y, 7, 9, 1, True)
        elif kind == "arc":  # ^ ^ : laughing eyes
            fb.ellipse(x, y + 4, 9, 8, 1, False, 3)
            fb.ellipse(x, y + 4, 8, 7, 1, False, 3)
        elif kind == "line":
            fb.rect(x - 9, y, 18, 3, 1, True)
        elif kind == "ring":
            fb.ellipse(x, y, 11, 11, 1, False)
            fb.ellipse(x, y, 3, 3, 1, True)
        elif kind == "wink":
            if right:
                fb.rect(x - 9, y, 18, 3, 1, True)
            else:
                fb.ellipse(x, y, 7, 9, 1, True)
        elif kind == "heart":
            fb.poly(x - 6, y - 5, _HEART, 1, True)
        elif kind == "tear":
            fb.rect(x - 9, y - 2, 18, 3, 1, True)
            fb.ellipse(x + (4 if right else -4), y + 9, 2, 4, 1, True)
        elif kind == "angry":
            fb.ellipse(x, y + 2, 6, 7, 1, True)
            if right:
                fb.line(x - 9, y - 6, x + 9, y - 11, 1)
            else:
                fb.line(x - 9, y - 11, x + 9, y - 6, 1)
        elif kind == "shades":
            fb.rect(x - 12, y - 5, 24, 11, 1, True)
            fb.hline(64 - _EYE_DX + 12, y - 4, 2 * _EYE_DX - 24, 1)
        elif kind == "half":  # heavy lids
            fb.ellipse(x, y, 8, 7, 1, True, 12)
            fb.hline(x - 9, y, 19, 1)
        elif kind == "odd":
            if right:
                fb.ellipse(x, y, 4, 4, 1, True)
            else:
                fb.ellipse(x, y, 9, 10, 1, False)
                fb.ellipse(x, y, 3, 3, 1, True)
        elif kind == "look":  # looking up and aside
            fb.ellipse(x, y, 8, 9, 1, False)
            fb.ellipse(x + 3, y - 4, 3, 3, 1, True)

    def _mouth(self, kind):
        fb = self.fb
        x, y = 64, _MOUTH_Y
        if kind == "flat":
            fb.rect(x - 10, y, 20, 2, 1, True)
        elif kind == "smile":
            fb.ellipse(x, y - 4, 12, 7, 1, False, 12)
            fb.ellipse(x, y - 4, 12, 6, 1, False, 12)
        elif kind == "grin":
            fb.ellipse(x, y - 3, 14, 9, 1, True, 12)
        elif kind == "frown":
            fb.ellipse(x, y + 6, 12, 6, 1, False, 3)
            fb.ellipse(x, y + 6, 12, 5, 1, False, 3)
        elif kind == "o":
            fb.ellipse(x, y, 5, 5, 1, False)
        elif kind == "open":
            fb.ellipse(x, y, 7, 9, 1, True)
        elif kind == "tongue":
            fb.ellipse(x, y - 4, 12, 7, 1, False, 12)
            fb.ellipse(x + 3, y + 4, 4, 4, 1, True)
        elif kind == "kiss":
            fb.ellipse(x, y - 2, 3, 2, 1, False)
            fb.ellipse(x, y + 2, 3, 2, 1, False)
        elif kind == "wavy":
            fb.line(x - 12, y, x - 6, y - 3, 1)
            fb.line(x - 6, y - 3, x, y, 1)
            fb.line(x, y, x + 6, y - 3, 1)
            fb.line(x + 6, y - 3, x + 12, y, 1)
        elif kind == "smirk":
            fb.line(x - 10, y, x + 6, y, 1)
            fb.line(x + 6, y, x + 12, y - 4, 1)


class Screen:
    """What the display shows now, and the task that redraws it on change.
    device is the HAL display: .pages (8), and await .write_page(i, view)."""

    def __init__(self, device):
        self.device = device
        self.face = Face()
        mv = memoryview(self.face.buf)
        self._pages = [mv[i * WIDTH:(i + 1) * WIDTH] for i in range(HEIGHT // 8)]
        self.state = "starting"
        self.emotion = "neutral"
        self.text = faces.status("starting")
        self._flag = asyncio.Event()
        self._flag.set()  # draw the first frame
        self.frames = 0  # frames drawn and written

    def set(self, state=None, emotion=None, text=None):
        """Change what is shown; unchanged values cost nothing. text None =
        the state's own status word."""
        if state is None:
            state = self.state
        if emotion is None:
            emotion = self.emotion
        if text is None:
            text = faces.status(state)
        if state == self.state and emotion == self.emotion and text == self.text:
            return
        self.state = state
        self.emotion = emotion
        self.text = text
        self._flag.set()

    async def run(self):
        while True:
            await self._flag.wait()
            self._flag.clear()
            self.face.draw(self.state, self.emotion, self.text)
            for i in range(len(self._pages)):
                await self.device.write_page(i, self._pages[i])
            await self.device.flush()
            self.frames += 1
