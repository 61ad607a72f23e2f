# What the status LED and the display show: the Device calls show(state) on
# every state change, emotion() on llm.emotion and error() on a failure; this
# module keeps the shown state, the reply's emotion and an error's time on
# screen, and hands them to the LED (colour and pattern: firmware/indicator.py)
# and the display (the face: firmware/display.py), each loaded only when the
# board has it. firmware/voice.py makes a Status only on a board with a status
# LED or a display. One task blinks the LED and ends an error's time; nothing
# here waits on the audio tasks, and repeating what is already shown allocates
# nothing.
import asyncio

from firmware import clock, log

ERROR_SHOW_MS = 5000  # how long an error stays up before the idle face returns
# The reference firmware's 21 faces; an unknown or missing emotion shows as neutral.
EMOTIONS = (
    "neutral", "happy", "laughing", "funny", "sad", "angry", "crying", "loving",
    "embarrassed", "surprised", "shocked", "thinking", "winking", "cool", "relaxed",
    "delicious", "kissy", "confident", "sleepy", "silly", "confused",
)


def emotion_name(emotion):
    """The emotion to show for a server value: one of EMOTIONS."""
    return emotion if emotion in EMOTIONS else "neutral"


class Status:
    def __init__(self, hal):
        self.hal = hal
        self._ind = None  # firmware.indicator, on a board with a status LED
        self._rgb = None
        if hal.has_led:
            from firmware import indicator

            self._ind = indicator
            self._rgb = getattr(hal, "led_colour", None)
        self.screen = None
        if hal.display is not None:
            from firmware.display import Screen

            self.screen = Screen(hal.display)
        self.state = "starting"
        self.mood = "neutral"
        self.pattern = "off"  # the LED's (firmware/indicator.py OFF while there is none)
        self.colour = (0, 0, 0)
        self._shown = None  # (state, mood, pattern) of the last "show" event
        self._lit = None
        self._changed = asyncio.Event()
        self._error_until = None

    def start(self):
        if self.screen is not None:
            asyncio.create_task(self.screen.run())
        asyncio.create_task(self._run())

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
        self.mood = emotion_name(name)
        self._apply(None)

    def error(self, text):
        """Show an error (a short ASCII reason) until the next state or ERROR_SHOW_MS."""
        self.state = "error"
        self.mood = "sad"
        self._error_until = clock.now_ms() + ERROR_SHOW_MS
        self._apply(text)
        self._changed.set()  # the task starts timing the error

    def _apply(self, text):
        if self.screen is not None:
            self.screen.set(self.state, self.mood, text)
        if self._ind is not None:
            colour, pattern = self._ind.led(self.state, self.mood, self._rgb is not None)
            if colour != self.colour or pattern != self.pattern:
                self.colour = colour
                self.pattern = pattern
                self._changed.set()
        shown = self._shown
        if shown is None or shown[0] != self.state or shown[1] != self.mood or shown[2] != self.pattern:
            self._shown = (self.state, self.mood, self.pattern)
            log.event("show", {"state": self.state, "emotion": self.mood, "pattern": self.pattern})

    async def _run(self):
        ind = self._ind
        while True:
            now = clock.now_ms()
            if self._error_until is not None and now >= self._error_until:
                self._error_until = None
                self.mood = "neutral"
                self.show("idle")
            wait = ERROR_SHOW_MS
            if ind is not None:
                lit = ind.lit(self.pattern, now)
                if lit != self._lit or self._changed.is_set():
                    self._lit = lit
                    if self._rgb is not None:
                        self._rgb(self.colour if lit else (0, 0, 0))
                    else:
                        self.hal.led(lit)
                period = ind.PERIOD_MS[self.pattern]
                if period:
                    wait = period - now % period
            self._changed.clear()
            if self._error_until is not None:
                wait = min(wait, max(1, self._error_until - now))
            try:
                await clock.wait_for_ms(self._changed.wait(), wait)
            except asyncio.TimeoutError:
                pass
