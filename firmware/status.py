# The status LED and the display follow the device: the Device calls
# show(state) on every state change, emotion() on llm.emotion and error() on
# a failure; this module turns them into a face (firmware/display.py) and an
# LED colour and pattern (firmware/indicator.py), and runs the LED's blinking
# and the screen as tasks. Nothing here waits on the audio tasks, and
# repeating what is already shown allocates nothing.
import asyncio

from firmware import clock, indicator, log

ERROR_SHOW_MS = 5000  # how long an error stays up before the idle face returns


class Status:
    def __init__(self, hal):
        self.hal = hal
        self._rgb = getattr(hal, "led_colour", None)
        self.screen = None
        if getattr(hal, "display", None) is not None:
            from firmware.display import Screen

            self.screen = Screen(hal.display)
        self.state = "starting"
        self.mood = "neutral"
        self.pattern = indicator.OFF
        self.colour = (0, 0, 0)
        self._lit = None
        self._changed = asyncio.Event()
        self._error_until = None

    def start(self):
        if self.screen is not None:
            asyncio.create_task(self.screen.run())
        asyncio.create_task(self._led())

    def show(self, state, text=None):
        """A device state name (firmware/state.py NAMES), or "activation"/"error"."""
        if state in ("idle", "listening", "connecting"):
            self.mood = "neutral"  # a reply's emotion lasts until the reply ends
        if self._error_until is not None:
            if state == "idle":
                return  # a failed open ends in idle: the error stays up for its time
            self._error_until = None
            self.mood = "neutral"
        self.state = state
        self._apply(text)

    def emotion(self, name):
        self.mood = indicator.emotion_name(name)
        self._apply(None)

    def error(self, text):
        """Show an error (a short ASCII reason) until the next state or ERROR_SHOW_MS."""
        self.state = "error"
        self.mood = "sad"
        self._error_until = clock.now_ms() + ERROR_SHOW_MS
        self._apply(text)

    def _apply(self, text):
        colour, pattern = indicator.led(self.state, self.mood, self._rgb is not None)
        if self.screen is not None:
            self.screen.set(self.state, self.mood, text)
        if colour != self.colour or pattern != self.pattern:
            self.colour = colour
            self.pattern = pattern
            log.event("show", {"state": self.state, "emotion": self.mood, "pattern": pattern})
            self._changed.set()

    async def _led(self):
        while True:
            now = clock.now_ms()
            if self._error_until is not None and now >= self._error_until:
                self._error_until = None
                self.mood = "neutral"
                self.show("idle")
            lit = indicator.lit(self.pattern, now)
            if lit != self._lit or self._changed.is_set():
                self._changed.clear()
                self._lit = lit
                if self._rgb is not None:
                    self._rgb(self.colour if lit else (0, 0, 0))
                else:
                    self.hal.led(lit)
            period = indicator.PERIOD_MS[self.pattern]
            wait = period - now % period if period else ERROR_SHOW_MS
            if self._error_until is not None:
                wait = min(wait, max(1, self._error_until - now))
            try:
                await clock.wait_for_ms(self._changed.wait(), wait)
            except asyncio.TimeoutError:
                pass
