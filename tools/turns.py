"""Split the firmware's event stream (docs/events.md) into turns and time them.

A turn starts when the device sends `listen start` and ends when the reply has
played out (the `speaker` event, or the `audio` play count when no sound came).
Every time is in device milliseconds, the events' `t`.
"""


def _is(ev, kind, **match):
    d = ev.get("d")
    return ev.get("k") == kind and all(isinstance(d, dict) and d.get(k) == v for k, v in match.items())


class Turn:
    """The marks of one turn, each a device time in ms or None."""

    MARKS = ("listen_start", "release", "listen_stop", "stt", "tts_start", "first_audio", "last_audio")

    def __init__(self, n):
        self.n = n
        for m in self.MARKS:
            setattr(self, m, None)
        self.speaker = None  # the speaker event's details: where the reply sits in the output WAV

    def latency_line(self, clock_speed=1.0):
        """One line of ms from the button release (or, with no release as in auto mode,
        from the stt the server sent when its VAD ended the utterance)."""
        base, what = (self.release, "release") if self.release is not None else (self.stt, "stt")
        steps = (("listen stop", self.listen_stop), ("stt", self.stt), ("tts start", self.tts_start),
                 ("first audio", self.first_audio), ("last audio", self.last_audio))
        parts = []
        for name, t in steps:
            if name == what or (name == "listen stop" and t is None and what == "stt"):
                continue  # the device sends no listen stop when the server's VAD ends the utterance
            parts.append("%s %s" % (name, "-" if t is None or base is None else "%+d ms" % (t - base)))
        scaled = "" if clock_speed == 1 else " (device clock, %g x real time)" % clock_speed
        return "turn %d latency from %s: %s%s" % (self.n, what, ", ".join(parts), scaled)


class TurnTracker:
    """Feed events in order; on_turn(turn) is called as each turn ends."""

    def __init__(self, on_turn=None):
        self.turns = []
        self.on_turn = on_turn
        self._cur = None

    def feed(self, ev):
        t = ev.get("t")
        if _is(ev, "tx", type="listen", state="start"):
            self._cur = Turn(len(self.turns) + 1)
            self._cur.listen_start = t
            return
        cur = self._cur
        if cur is None:
            return
        if ev.get("k") == "button" and ev.get("d") == "release" and cur.release is None:
            cur.release = t
        elif _is(ev, "tx", type="listen", state="stop") and cur.listen_stop is None:
            cur.listen_stop = t
        elif _is(ev, "rx", type="stt") and cur.stt is None:
            cur.stt = t
        elif _is(ev, "rx", type="tts", state="start") and cur.tts_start is None:
            cur.tts_start = t
        elif ev.get("k") == "speaker" and cur.tts_start is not None:
            cur.speaker = ev["d"]
            cur.first_audio = ev["d"]["start_ms"]
            cur.last_audio = t
            self._end()
        elif _is(ev, "audio", dir="play") and cur.tts_start is not None and not ev["d"].get("frames"):
            self._end()  # the reply had no audio: no speaker event comes

    def _end(self):
        turn, self._cur = self._cur, None
        self.turns.append(turn)
        if self.on_turn:
            self.on_turn(turn)


def split(events):
    """All complete turns in a list of events."""
    tracker = TurnTracker()
    for ev in events:
        tracker.feed(ev)
    return tracker.turns
