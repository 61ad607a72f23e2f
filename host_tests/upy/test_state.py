# The state machine follows docs/protocol.md §6: allowed transitions and the
# reference's reaction to each input, plus our draining state and the
# channel's own state (link). Run under CPython and MicroPython.
from firmware import state as S


def _ctl(button_mode="ptt", listen_mode="auto", st=S.IDLE, link=S.LINK_DOWN):
    m = S.Machine()
    m.state = st
    c = S.Controller(m, button_mode, listen_mode)
    c.link = link
    return c


def _names(acts):
    return [a[0] for a in acts]


# Every input the Controller takes, with an argument where it needs one.
INPUTS = (
    ("press", ()), ("release", ()), ("opened", ()), ("closed", ()), ("tts_start", ()),
    ("tts_stop", ()), ("drained", ()), ("goodbye", ()), ("link_dead", ("no answer for 25 s",)),
    ("wifi_lost", ()), ("undecodable", ("opus",)), ("shutdown", ()), ("system", ("reboot",)),
    ("system", ("shutdown",)),
)
LINKS = (S.LINK_DOWN, S.LINK_OPENING, S.LINK_UP, S.LINK_CLOSING)
# The (state, link) pairs the Controller can reach: listening, speaking and
# draining need the channel up (every way of losing it goes to idle), and
# connecting waits for an open or for the old channel's close.
REACHABLE = ([(S.IDLE, link) for link in LINKS] + [(S.CONNECTING, S.LINK_OPENING), (S.CONNECTING, S.LINK_CLOSING)]
             + [(st, S.LINK_UP) for st in (S.LISTENING, S.SPEAKING, S.DRAINING)])


def test_every_input_in_every_state_takes_an_allowed_move():
    """The whole table: no input in any state (any button/listen mode, any
    link) asks the Machine for a move it refuses, and a session state is
    never left behind without the mic off."""
    for button in ("ptt", "click"):
        for listen in ("auto", "realtime"):
            for st, link in REACHABLE:
                for mode in (S.MANUAL, S.AUTO, S.REALTIME):
                    for name, args in INPUTS:
                        c = _ctl(button, listen, st, link)
                        c.mode = mode
                        acts = getattr(c, name)(*args)
                        where = (button, listen, S.NAMES[st], link, mode, name)
                        assert c.m.refused == 0, where
                        new = c.m.state
                        assert new == st or S.allowed(st, new), where
                        assert (new, c.link) in REACHABLE, where
                        if new == S.IDLE and st in (S.LISTENING, S.SPEAKING) and name != "release":
                            assert (S.MIC_OFF, None) in acts, where
                        if (S.OPEN, None) in acts:
                            assert link in (S.LINK_DOWN, S.LINK_CLOSING) and c.link == S.LINK_OPENING, where


def test_transition_table_is_the_reference_one():
    # docs/protocol.md §6.1, plus draining (ours).
    table = {
        S.UNKNOWN: (S.STARTING,),
        S.STARTING: (S.WIFI_CONFIGURING, S.ACTIVATING),
        S.WIFI_CONFIGURING: (S.ACTIVATING, S.AUDIO_TESTING),
        S.AUDIO_TESTING: (S.WIFI_CONFIGURING,),
        S.ACTIVATING: (S.UPGRADING, S.IDLE, S.WIFI_CONFIGURING),
        S.UPGRADING: (S.IDLE, S.ACTIVATING),
        S.IDLE: (S.CONNECTING, S.LISTENING, S.SPEAKING, S.ACTIVATING, S.UPGRADING, S.WIFI_CONFIGURING),
        S.CONNECTING: (S.IDLE, S.LISTENING),
        S.LISTENING: (S.SPEAKING, S.IDLE),
        S.SPEAKING: (S.LISTENING, S.IDLE, S.DRAINING),
        S.DRAINING: (S.IDLE, S.LISTENING, S.SPEAKING),
        S.FATAL_ERROR: (),
    }
    assert sorted(table) == list(range(len(S.NAMES)))
    for old, moves in table.items():
        for new in range(len(S.NAMES)):
            assert S.allowed(old, new) == (new in moves), (S.NAMES[old], S.NAMES[new])


def test_transition_table_refuses_invalid_moves():
    m = S.Machine()
    assert not m.to(S.IDLE)  # unknown -> idle is not allowed
    assert m.to(S.STARTING) and m.to(S.ACTIVATING) and m.to(S.IDLE)
    assert not m.to(S.STARTING)
    assert m.to(S.IDLE)  # same state is a no-op
    assert m.to(S.LISTENING) and not m.to(S.CONNECTING)
    assert m.refused == 3


def test_ptt_turn_opens_channel_then_listens_manual_then_drains_to_idle():
    c = _ctl()
    assert _names(c.press()) == [S.OPEN] and c.m.state == S.CONNECTING and c.link == S.LINK_OPENING
    assert c.opened() == [(S.LISTEN_START, "manual"), (S.MIC_ON, None)]
    assert c.m.state == S.LISTENING and c.link == S.LINK_UP
    assert _names(c.release()) == [S.MIC_OFF, S.LISTEN_STOP] and c.m.state == S.IDLE
    assert _names(c.tts_start()) == [S.MIC_OFF, S.FLUSH_PLAYBACK] and c.m.state == S.SPEAKING
    assert c.accepts_audio()
    assert c.tts_stop() == [(S.DRAIN, None)] and c.m.state == S.DRAINING and not c.accepts_audio()
    assert c.drained() == [(S.TURN_DONE, None)] and c.m.state == S.IDLE
    assert c.drained() == []  # one end of reply, reported once


def test_ptt_with_open_channel_listens_at_once():
    c = _ctl(link=S.LINK_UP)
    assert _names(c.press()) == [S.FLUSH_PLAYBACK, S.LISTEN_START, S.MIC_ON]


def test_press_while_the_tail_drains_starts_a_new_turn():
    c = _ctl(st=S.DRAINING, link=S.LINK_UP)
    assert _names(c.press()) == [S.FLUSH_PLAYBACK, S.LISTEN_START, S.MIC_ON] and c.m.state == S.LISTENING
    assert c.drained() == []  # the flushed tail never reports


def test_release_while_connecting_cancels_the_turn():
    c = _ctl()
    c.press()
    assert c.release() == []
    assert c.opened() == [] and c.m.state == S.IDLE and c.link == S.LINK_UP


def test_ptt_press_while_speaking_aborts_and_listens():
    c = _ctl(st=S.SPEAKING, link=S.LINK_UP)
    assert _names(c.press()) == [S.ABORT, S.FLUSH_PLAYBACK, S.LISTEN_START, S.MIC_ON]
    assert c.m.state == S.LISTENING and c.mode == "manual"


def test_click_toggles_like_the_reference():
    c = _ctl(button_mode="click", link=S.LINK_UP)
    assert c.press() == [(S.FLUSH_PLAYBACK, None), (S.LISTEN_START, "auto"), (S.MIC_ON, None)]
    assert c.release() == []  # release means nothing in click mode
    acts = c.press()
    assert _names(acts) == [S.MIC_OFF, S.FLUSH_PLAYBACK, S.CLOSE] and c.m.state == S.IDLE
    assert acts[-1] == (S.CLOSE, "closed with the button") and c.link == S.LINK_CLOSING
    c.m.state = S.SPEAKING
    assert c.press() == [(S.ABORT, None)] and c.m.state == S.SPEAKING


def test_press_while_the_old_channel_closes_opens_a_new_one_after():
    c = _ctl(link=S.LINK_CLOSING)
    assert c.press() == [] and c.m.state == S.CONNECTING  # not into the closing socket
    assert c.closed() == [(S.OPEN, None)] and c.link == S.LINK_OPENING
    assert c.opened() == [(S.LISTEN_START, "manual"), (S.MIC_ON, None)]


def test_auto_mode_listens_again_only_once_playback_drains():
    c = _ctl(button_mode="click", link=S.LINK_UP)
    c.press()
    c.tts_start()
    assert c.tts_stop() == [(S.DRAIN, None)] and c.m.state == S.DRAINING  # not listening with the mic off
    assert c.drained() == [(S.TURN_DONE, None), (S.LISTEN_START, "auto"), (S.MIC_ON, None)]
    assert c.m.state == S.LISTENING and c.drained() == []


def test_second_tts_stop_after_abort_is_ignored():
    c = _ctl(button_mode="click", st=S.SPEAKING, link=S.LINK_UP)
    c.mode = "manual"
    c.tts_stop()
    assert c.m.state == S.DRAINING
    assert c.tts_stop() == [] and c.m.state == S.DRAINING


def test_tts_start_only_from_idle_listening_or_draining():
    c = _ctl(st=S.CONNECTING)
    assert c.tts_start() == [] and c.m.state == S.CONNECTING
    c = _ctl(st=S.DRAINING, link=S.LINK_UP)
    assert _names(c.tts_start()) == [S.MIC_OFF, S.FLUSH_PLAYBACK] and c.m.state == S.SPEAKING


def test_realtime_keeps_the_mic_running():
    c = _ctl(button_mode="click", listen_mode="realtime", link=S.LINK_UP)
    c.press()
    assert _names(c.tts_start()) == [S.FLUSH_PLAYBACK]
    assert c.tts_stop() == [(S.DRAIN, None)]
    assert c.drained() == [(S.TURN_DONE, None)] and c.m.state == S.LISTENING  # no second listen start


def test_close_returns_to_idle_from_any_session_state():
    for st in (S.CONNECTING, S.LISTENING, S.SPEAKING, S.DRAINING):
        c = _ctl(st=st, link=S.LINK_UP)
        assert _names(c.closed()) == [S.MIC_OFF, S.FLUSH_PLAYBACK]
        assert c.m.state == S.IDLE and c.link == S.LINK_DOWN
    c = _ctl(st=S.IDLE)
    assert c.closed() == []


def test_the_device_hangs_up_through_the_machine():
    """Goodbye, a dead link, Wi-Fi loss, undecodable audio and shutdown all
    end the session here, each with its reason, never behind its back."""
    for name, args, reason in (("goodbye", (), "server said goodbye"),
                               ("link_dead", ("no answer for 25 s",), "no answer for 25 s"),
                               ("wifi_lost", (), "Wi-Fi lost"),
                               ("undecodable", ("server sends opus audio",), "server sends opus audio"),
                               ("shutdown", (), "shutdown")):
        c = _ctl(st=S.SPEAKING, link=S.LINK_UP)
        acts = getattr(c, name)(*args)
        assert acts == [(S.MIC_OFF, None), (S.FLUSH_PLAYBACK, None), (S.CLOSE, reason)], name
        assert c.m.state == S.IDLE and c.link == S.LINK_CLOSING
        assert c.closed() == [] and c.link == S.LINK_DOWN
        c = _ctl(st=S.IDLE, link=S.LINK_UP)
        assert getattr(c, name)(*args) == [(S.CLOSE, reason)], name  # idle with the channel open
        c = _ctl(st=S.IDLE, link=S.LINK_DOWN)
        assert getattr(c, name)(*args) == [], name  # nothing open: nothing to close


def test_a_hang_up_while_the_channel_opens_closes_it_once_open():
    """Shutdown or Wi-Fi loss while connecting: the open cannot be taken back,
    so the channel is closed as soon as it opens, not left open and idle."""
    for name, reason in (("shutdown", "shutdown"), ("wifi_lost", "Wi-Fi lost")):
        c = _ctl()
        assert c.press() == [(S.OPEN, None)] and c.m.state == S.CONNECTING
        assert S.CLOSE not in _names(getattr(c, name)())  # nothing open yet
        assert c.m.state == S.IDLE and c.link == S.LINK_OPENING
        assert c.opened() == [(S.CLOSE, reason)] and c.link == S.LINK_CLOSING
        assert c.closed() == [] and c.link == S.LINK_DOWN
    # A press after the hang-up but before the open lands wants the channel after all.
    c = _ctl()
    c.press()
    c.wifi_lost()
    c.press()
    assert c.opened() == [(S.LISTEN_START, S.MANUAL), (S.MIC_ON, None)]
    # An open that fails forgets the pending close.
    c = _ctl()
    c.press()
    c.shutdown()
    c.closed()
    assert c.close_when_open is None


def test_system_reboot():
    c = _ctl(st=S.LISTENING, link=S.LINK_UP)
    assert _names(c.system("reboot")) == [S.MIC_OFF, S.FLUSH_PLAYBACK, S.CLOSE, S.REBOOT]
    assert c.system("shutdown") == []
