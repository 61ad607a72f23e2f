# The device state machine (spec §6): the states, the transitions the
# reference firmware allows, and the Controller that turns every input
# (button, server message, channel events, playback drained) into a state
# change plus a list of actions for the app to carry out. Pure: no I/O, so it
# is tested under both CPython and MicroPython.
from micropython import const

from firmware import log

UNKNOWN = const(0)
STARTING = const(1)
WIFI_CONFIGURING = const(2)
IDLE = const(3)
CONNECTING = const(4)
LISTENING = const(5)
SPEAKING = const(6)
UPGRADING = const(7)
ACTIVATING = const(8)
AUDIO_TESTING = const(9)
FATAL_ERROR = const(10)

NAMES = (
    "unknown", "starting", "wifi_configuring", "idle", "connecting", "listening",
    "speaking", "upgrading", "activating", "audio_testing", "fatal_error",
)

# Allowed transitions, exactly as the reference's validator (spec §6.1).
_ALLOWED = {
    UNKNOWN: (STARTING,),
    STARTING: (WIFI_CONFIGURING, ACTIVATING),
    WIFI_CONFIGURING: (ACTIVATING, AUDIO_TESTING),
    AUDIO_TESTING: (WIFI_CONFIGURING,),
    ACTIVATING: (UPGRADING, IDLE, WIFI_CONFIGURING),
    UPGRADING: (IDLE, ACTIVATING),
    IDLE: (CONNECTING, LISTENING, SPEAKING, ACTIVATING, UPGRADING, WIFI_CONFIGURING),
    CONNECTING: (IDLE, LISTENING),
    LISTENING: (SPEAKING, IDLE),
    SPEAKING: (LISTENING, IDLE),
    FATAL_ERROR: (),
}

_TAG = "state"


class Machine:
    def __init__(self):
        self.state = UNKNOWN

    @property
    def name(self):
        return NAMES[self.state]

    def to(self, new):
        """Move to `new` if the table allows it; same-state moves are no-ops."""
        if new == self.state:
            return True
        if new not in _ALLOWED[self.state]:
            log.warn(_TAG, "refused %s -> %s" % (NAMES[self.state], NAMES[new]))
            return False
        log.info(_TAG, "%s -> %s" % (NAMES[self.state], NAMES[new]))
        log.event("state", {"from": NAMES[self.state], "to": NAMES[new]})
        self.state = new
        return True


# Actions the app carries out, in order. Tuples: (ACTION, argument).
OPEN = "open"  # connect + hello
CLOSE = "close"  # drop the channel (the device sends no goodbye on WebSocket)
LISTEN_START = "listen_start"  # arg: mode
LISTEN_STOP = "listen_stop"
ABORT = "abort"  # arg: reason or None
MIC_ON = "mic_on"
MIC_OFF = "mic_off"
FLUSH_PLAYBACK = "flush_playback"
REBOOT = "reboot"

MANUAL = "manual"
AUTO = "auto"
REALTIME = "realtime"


class Controller:
    """Turns inputs into transitions and actions.

    button_mode "ptt": press starts a manual (push-to-talk) turn, release ends it.
    button_mode "click": a press toggles like the reference's BOOT button
    (idle -> listen in `listen_mode`, listening -> close, speaking -> abort).
    """

    def __init__(self, machine, button_mode="ptt", listen_mode=AUTO):
        self.m = machine
        self.button_mode = button_mode
        self.listen_mode = listen_mode
        self.mode = MANUAL  # mode of the current or last listen
        self.channel_open = False
        self.pending = None  # listen mode requested while the channel opens
        self.await_drain = False  # auto mode: listen again once playback drains

    # -- helpers -----------------------------------------------------------
    def _listen(self, mode):
        self.mode = mode
        self.await_drain = False
        if not self.m.to(LISTENING):
            return []
        return [(LISTEN_START, mode), (MIC_ON, None)]

    def _start_turn(self, mode):
        if self.channel_open:
            # The last reply's tail may still be playing: a person starting a
            # new turn wants quiet, and the mic must not hear the speaker.
            return [(FLUSH_PLAYBACK, None)] + self._listen(mode)
        self.pending = mode
        self.m.to(CONNECTING)
        return [(OPEN, None)]

    def _to_idle(self):
        self.await_drain = False
        self.pending = None
        self.m.to(IDLE)

    # -- button ------------------------------------------------------------
    def press(self):
        s = self.m.state
        if self.button_mode == "click":
            if s == IDLE:
                return self._start_turn(self.listen_mode)
            if s == SPEAKING:
                return [(ABORT, None)]  # stay speaking until the server's tts stop
            if s == LISTENING:
                self._to_idle()
                self.channel_open = False
                return [(MIC_OFF, None), (CLOSE, None)]
            return []
        # push-to-talk
        if s == IDLE:
            return self._start_turn(MANUAL)
        if s == SPEAKING:
            # Barge-in: cut the reply short and listen at once.
            return [(ABORT, None), (FLUSH_PLAYBACK, None)] + self._listen(MANUAL)
        return []

    def release(self):
        if self.button_mode != "ptt":
            return []
        s = self.m.state
        if s == CONNECTING:
            self.pending = None  # released before the channel opened: no turn
            return []
        if s == LISTENING and self.mode == MANUAL:
            self._to_idle()
            return [(MIC_OFF, None), (LISTEN_STOP, None)]
        return []

    # -- channel -----------------------------------------------------------
    def opened(self):
        self.channel_open = True
        if self.m.state != CONNECTING:
            return []
        mode, self.pending = self.pending, None
        if mode is None:
            self.m.to(IDLE)
            return []
        return self._listen(mode)

    def closed(self):
        """The channel closed or failed to open, for whatever reason."""
        self.channel_open = False
        if self.m.state in (CONNECTING, LISTENING, SPEAKING):
            self._to_idle()
            return [(MIC_OFF, None), (FLUSH_PLAYBACK, None)]
        return []

    # -- server messages ---------------------------------------------------
    def tts_start(self):
        s = self.m.state
        if s not in (IDLE, LISTENING):
            return []
        self.await_drain = False
        self.m.to(SPEAKING)
        acts = [(FLUSH_PLAYBACK, None)]
        if self.mode != REALTIME:
            acts.insert(0, (MIC_OFF, None))
        return acts

    def tts_stop(self):
        if self.m.state != SPEAKING:
            return []  # e.g. the stock server's second tts stop after an abort
        if self.mode == MANUAL:
            self._to_idle()
            return []
        self.m.to(LISTENING)
        if self.mode == REALTIME:
            return []  # the mic never stopped
        self.await_drain = True
        return []

    def drained(self):
        """Playback has played everything queued."""
        if self.await_drain and self.m.state == LISTENING:
            return self._listen(self.mode)
        return []

    def system(self, command):
        if command == "reboot":
            self._to_idle()
            return [(MIC_OFF, None), (CLOSE, None), (REBOOT, None)]
        return []

    def accepts_audio(self):
        """Downlink audio is queued only while speaking (spec §2.3)."""
        return self.m.state == SPEAKING
