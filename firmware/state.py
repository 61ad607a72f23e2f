# The device state machine (docs/protocol.md §6): the states, the moves the
# reference firmware allows, and the Controller that turns every input
# (button, server message, channel events, liveness, Wi-Fi, playback drained)
# into a state change plus a list of actions for the app to carry out. Pure:
# no I/O, so it is tested under both CPython and MicroPython.
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
# Ours, not the reference's: the server has sent tts stop and the tail of the
# reply is still playing. The reference stays "speaking" until its queue
# empties; a named state makes the end of a reply one thing, not three flags.
DRAINING = const(11)

NAMES = (
    "unknown", "starting", "wifi_configuring", "idle", "connecting", "listening",
    "speaking", "upgrading", "activating", "audio_testing", "fatal_error", "draining",
)

# Allowed transitions: the reference's validator (docs/protocol.md §6.1) plus
# draining. One entry per state, in state order: a bit for each state the
# device may move to from it (a tuple of ints is one small constant; a dict of
# tuples would stay resident at five times the size).
_ALLOWED = (
    1 << STARTING,  # unknown
    1 << WIFI_CONFIGURING | 1 << ACTIVATING,  # starting
    1 << ACTIVATING | 1 << AUDIO_TESTING,  # wifi_configuring
    1 << CONNECTING | 1 << LISTENING | 1 << SPEAKING | 1 << ACTIVATING | 1 << UPGRADING | 1 << WIFI_CONFIGURING,  # idle
    1 << IDLE | 1 << LISTENING,  # connecting
    1 << SPEAKING | 1 << IDLE,  # listening
    1 << LISTENING | 1 << IDLE | 1 << DRAINING,  # speaking
    1 << IDLE | 1 << ACTIVATING,  # upgrading
    1 << UPGRADING | 1 << IDLE | 1 << WIFI_CONFIGURING,  # activating
    1 << WIFI_CONFIGURING,  # audio_testing
    0,  # fatal_error
    1 << IDLE | 1 << LISTENING | 1 << SPEAKING,  # draining
)


def allowed(old, new):
    """Whether the table lets the device move from state old to state new."""
    return (_ALLOWED[old] >> new) & 1 == 1


# States that exist only while a channel is wanted or open.
SESSION_STATES = (CONNECTING, LISTENING, SPEAKING, DRAINING)

_TAG = "state"


class Machine:
    def __init__(self):
        self.state = UNKNOWN
        self.refused = 0  # moves the table refused (a Controller bug if ever > 0)
        self.listener = None  # called with the new state's name after each move (the LED and display)

    @property
    def name(self):
        return NAMES[self.state]

    def to(self, new):
        """Move to `new` if the table allows it; same-state moves are no-ops."""
        if new == self.state:
            return True
        if not allowed(self.state, new):
            self.refused += 1
            log.warn(_TAG, "refused %s -> %s" % (NAMES[self.state], NAMES[new]))
            return False
        log.info(_TAG, "%s -> %s" % (NAMES[self.state], NAMES[new]))
        log.event("state", {"from": NAMES[self.state], "to": NAMES[new]})
        self.state = new
        if self.listener is not None:
            self.listener(NAMES[new])
        return True


# Actions the app carries out, in order. Tuples: (ACTION, argument).
OPEN = "open"  # connect + hello
CLOSE = "close"  # arg: why the device hangs up (the device sends no goodbye on WebSocket)
LISTEN_START = "listen_start"  # arg: mode
LISTEN_STOP = "listen_stop"
ABORT = "abort"  # arg: reason or None
MIC_ON = "mic_on"
MIC_OFF = "mic_off"
FLUSH_PLAYBACK = "flush_playback"  # drop queued downlink audio
DRAIN = "drain"  # no more audio for this reply: play the tail, then report drained()
TURN_DONE = "turn_done"  # the reply has played out: report the turn's figures
REBOOT = "reboot"

MANUAL = "manual"
AUTO = "auto"
REALTIME = "realtime"

# The channel as the Controller sees it.
LINK_DOWN = const(0)
LINK_OPENING = const(1)  # OPEN issued, opened()/closed() not yet seen
LINK_UP = const(2)
LINK_CLOSING = const(3)  # CLOSE issued, closed() not yet seen


class Controller:
    """Turns inputs into transitions and actions. Besides the Machine's state
    it keeps only what is state too: the channel's (link), the listen mode of
    the current turn, and the mode a press asked for while the channel opens.

    button_mode "ptt": press starts a manual (push-to-talk) turn, release ends it.
    button_mode "click": a press toggles like the reference's BOOT button
    (idle -> listen in `listen_mode`, listening -> close, speaking -> abort).
    """

    def __init__(self, machine, button_mode="ptt", listen_mode=AUTO):
        self.m = machine
        self.button_mode = button_mode
        self.listen_mode = listen_mode
        self.mode = MANUAL  # mode of the current or last listen
        self.link = LINK_DOWN
        self.pending = None  # listen mode wanted once the channel is open
        self.close_when_open = None  # a hang-up that came while the channel was opening: its reason

    # -- helpers -----------------------------------------------------------
    def _listen(self, mode):
        self.mode = mode
        if not self.m.to(LISTENING):
            return []
        return [(LISTEN_START, mode), (MIC_ON, None)]

    def _start_turn(self, mode):
        if self.link == LINK_UP:
            # The last reply's tail may still be playing: a person starting a
            # new turn wants quiet, and the mic must not hear the speaker.
            return [(FLUSH_PLAYBACK, None)] + self._listen(mode)
        self.pending = mode
        self.close_when_open = None  # a new turn wants the channel after all
        self.m.to(CONNECTING)
        if self.link == LINK_DOWN:
            self.link = LINK_OPENING
            return [(OPEN, None)]
        return []  # opening: opened() listens; closing: closed() opens again

    def _to_idle(self):
        self.pending = None
        if self.m.state in SESSION_STATES:
            self.m.to(IDLE)
            return [(MIC_OFF, None), (FLUSH_PLAYBACK, None)]
        return []

    def _hang_up(self, reason):
        """The device ends the session itself; `reason` goes into the closed event."""
        acts = self._to_idle()
        if self.link == LINK_UP:
            self.link = LINK_CLOSING
            acts.append((CLOSE, reason))
        elif self.link == LINK_OPENING:
            # Nothing to close yet: close it the moment the open lands, or the
            # channel would sit open and idle (and a shutdown would wait on it).
            self.close_when_open = reason
        return acts

    # -- button ------------------------------------------------------------
    def press(self):
        s = self.m.state
        if self.button_mode == "click":
            if s in (IDLE, DRAINING):
                return self._start_turn(self.listen_mode)
            if s == SPEAKING:
                return [(ABORT, None)]  # stay speaking until the server's tts stop
            if s == LISTENING:
                return self._hang_up("closed with the button")
            return []
        # push-to-talk
        if s in (IDLE, DRAINING):
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
            self.m.to(IDLE)
            return [(MIC_OFF, None), (LISTEN_STOP, None)]
        return []

    # -- voice detector (listen_trigger "vad") -----------------------------
    def voice_onset(self):
        """Speech heard while idle: a hands-free turn in auto mode, as a click
        would start (the server's VAD ends each utterance)."""
        if self.m.state != IDLE:
            return []
        return self._start_turn(AUTO)

    # -- channel -----------------------------------------------------------
    def opened(self):
        if self.close_when_open is not None:
            reason, self.close_when_open = self.close_when_open, None
            self.link = LINK_CLOSING
            return [(CLOSE, reason)]
        self.link = LINK_UP
        if self.m.state != CONNECTING:
            return []
        mode, self.pending = self.pending, None
        if mode is None:
            self.m.to(IDLE)
            return []
        return self._listen(mode)

    def closed(self):
        """The channel closed or failed to open, for whatever reason."""
        was = self.link
        self.link = LINK_DOWN
        self.close_when_open = None  # the open failed: nothing left to close
        if was == LINK_CLOSING and self.m.state == CONNECTING and self.pending is not None:
            # A press came while the old channel was closing: open a new one now.
            self.link = LINK_OPENING
            return [(OPEN, None)]
        return self._to_idle()

    def link_dead(self, reason):
        """Liveness: no frame from the server within the bound."""
        return self._hang_up(reason)

    def wifi_lost(self):
        return self._hang_up("Wi-Fi lost")

    def undecodable(self, reason):
        """The server sends audio this device cannot play."""
        return self._hang_up(reason)

    # -- server messages ---------------------------------------------------
    def tts_start(self):
        # Not on a channel the device is hanging up: its last frames mean nothing now.
        if self.link != LINK_UP or self.m.state not in (IDLE, LISTENING, DRAINING):
            return []
        self.m.to(SPEAKING)
        acts = [(FLUSH_PLAYBACK, None)]
        if self.mode != REALTIME:
            acts.insert(0, (MIC_OFF, None))
        return acts

    def tts_stop(self):
        if self.m.state != SPEAKING:
            return []  # e.g. the stock server's second tts stop after an abort
        self.m.to(DRAINING)
        return [(DRAIN, None)]

    def drained(self):
        """Playback has played everything queued for the reply."""
        if self.m.state != DRAINING:
            return []
        if self.mode == MANUAL:
            self.m.to(IDLE)
            return [(TURN_DONE, None)]
        if self.mode == REALTIME:
            self.m.to(LISTENING)  # the mic never stopped
            return [(TURN_DONE, None)]
        return [(TURN_DONE, None)] + self._listen(self.mode)

    def goodbye(self):
        return self._hang_up("server said goodbye")

    def shutdown(self):
        return self._hang_up("shutdown")

    def system(self, command):
        if command == "reboot":
            return self._hang_up("reboot") + [(REBOOT, None)]
        return []

    def accepts_audio(self):
        """Downlink audio is queued only while speaking (docs/protocol.md §2.3)."""
        return self.m.state == SPEAKING

    def draining(self):
        return self.m.state == DRAINING
