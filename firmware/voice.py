# The device's own voice and face: what it shows (firmware/status.py: LED and
# display, made only on a board that has either) and the local prompts it says
# (firmware/prompts.py), with no server needed. Boot (firmware/startup.py,
# firmware/ota.py) and the Device call it with what happened; prompts play
# through the Device's playback task.
#   show(state)          a device state name: face, status line, LED
#   emotion(name)        llm.emotion of the reply
#   error(text)          the error face and LED for a short ASCII reason
#   failed(step, text)   step: "wifi", "ota" or "server": the error face and
#                        the "cannot reach ..." prompt naming the step
#   activation(code)     show the code and read it digit by digit
#   say(*names)          queue prompts by name (firmware/prompt_file.py lists them;
#                        plain strings here, so that module loads only with the player)
#   cut()                a key press or a server reply: stop speaking now
# The prompt player (firmware/prompts.py: its code and ~8 KB of buffers) is
# made when there is something to say and dropped when it has been said, so
# a device that never needs a prompt never holds it.
import asyncio

from firmware import clock, log

SLOW_CONNECT_MS = 3000  # say "connecting" only when connecting takes longer than this
_ERRORS = {"wifi": "err_wifi", "ota": "err_ota", "server": "err_server"}
_TAG = "voice"


class Voice:
    def __init__(self, hal, language, speaker_rate, wake):
        self.status = None  # a status.Status on a board with a status LED or a display
        if hal.has_led or hal.display is not None:
            from firmware.status import Status

            self.status = Status(hal)
        self.state = "starting"  # the last state shown
        self.language = language
        self.speaker_rate = speaker_rate
        self.player = None  # a prompts.Player while there is something to say
        self.wake = wake  # the playback task's event: set when there is something to say
        self._slow = None  # the pending "connecting" prompt's task

    def start(self):
        if self.status is not None:
            self.status.start()

    def show(self, state, text=None):
        self.state = state
        if self.status is not None:
            self.status.show(state, text)
        if state in ("starting", "connecting"):
            if self._slow is None:
                self._slow = asyncio.create_task(self._say_if_slow(state))
        elif self._slow is not None:
            self._slow.cancel()
            self._slow = None

    async def _say_if_slow(self, state):
        try:
            await clock.sleep_ms(SLOW_CONNECT_MS)
        except asyncio.CancelledError:
            return
        self._slow = None
        if self.state == state:
            self.say("connecting")

    def emotion(self, name):
        if self.status is not None:
            self.status.emotion(name)

    def error(self, text):
        self.state = "error"
        if self.status is not None:
            self.status.error(text)

    def failed(self, step, text):
        log.event("failed", {"step": step, "reason": text})
        self.error(text)
        self.say(_ERRORS[step])

    def activation(self, code):
        digits = ["digit_" + c for c in str(code) if "0" <= c <= "9"]
        self.show("activation", ("Code " + str(code))[:14])
        self.say("activation", *digits)

    def say(self, *names):
        try:
            if self.player is None:
                from firmware.prompts import Player

                self.player = Player(self.language, self.speaker_rate)
            self.player.say(*names)
        except MemoryError:
            # A prompt is worth less than the task that asked for it (the
            # channel's, reporting why the open failed): skip it. A prompt
            # already playing goes on.
            log.error(_TAG, "no room to say %s" % ", ".join(names))
            return
        self.wake.set()

    def next_render(self, gain):
        """The next prompt frame for the speaker (see prompts.Player.next_render);
        None once everything queued has been said, and the player goes."""
        out = self.player.next_render(gain)
        if out is None:
            self.player = None
        return out

    def cut(self):
        p = self.player
        if p is not None:
            if p.active:
                log.event("prompt", {"cut": p.playing})
            p.stop()
            self.player = None
