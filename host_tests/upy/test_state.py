# The state machine follows spec §6: allowed transitions and the reference's
# reaction to each input.
from firmware import state as S


def _ctl(button_mode="ptt", listen_mode="auto", st=S.IDLE):
    m = S.Machine()
    m.state = st
    return S.Controller(m, button_mode, listen_mode)


def _names(acts):
    return [a[0] for a in acts]


def test_transition_table_refuses_invalid_moves():
    m = S.Machine()
    assert not m.to(S.IDLE)  # unknown -> idle is not allowed
    assert m.to(S.STARTING) and m.to(S.ACTIVATING) and m.to(S.IDLE)
    assert not m.to(S.STARTING)
    assert m.to(S.IDLE)  # same state is a no-op
    assert m.to(S.LISTENING) and not m.to(S.CONNECTING)


def test_ptt_turn_opens_channel_then_listens_manual():
    c = _ctl()
    assert _names(c.press()) == [S.OPEN] and c.m.state == S.CONNECTING
    acts = c.opened()
    assert acts == [(S.LISTEN_START, "manual"), (S.MIC_ON, None)]
    assert c.m.state == S.LISTENING
    assert _names(c.release()) == [S.MIC_OFF, S.LISTEN_STOP] and c.m.state == S.IDLE
    assert _names(c.tts_start()) == [S.MIC_OFF, S.FLUSH_PLAYBACK] and c.m.state == S.SPEAKING
    assert c.tts_stop() == [] and c.m.state == S.IDLE  # manual: back to idle


def test_ptt_with_open_channel_listens_at_once():
    c = _ctl()
    c.channel_open = True
    assert _names(c.press()) == [S.FLUSH_PLAYBACK, S.LISTEN_START, S.MIC_ON]


def test_release_while_connecting_cancels_the_turn():
    c = _ctl()
    c.press()
    assert c.release() == []
    assert c.opened() == [] and c.m.state == S.IDLE and c.channel_open


def test_ptt_press_while_speaking_aborts_and_listens():
    c = _ctl(st=S.SPEAKING)
    c.channel_open = True
    assert _names(c.press()) == [S.ABORT, S.FLUSH_PLAYBACK, S.LISTEN_START, S.MIC_ON]
    assert c.m.state == S.LISTENING and c.mode == "manual"


def test_click_toggles_like_the_reference():
    c = _ctl(button_mode="click")
    c.channel_open = True
    assert c.press() == [(S.FLUSH_PLAYBACK, None), (S.LISTEN_START, "auto"), (S.MIC_ON, None)]
    assert c.release() == []  # release means nothing in click mode
    assert _names(c.press()) == [S.MIC_OFF, S.CLOSE] and c.m.state == S.IDLE
    c.m.state = S.SPEAKING
    assert c.press() == [(S.ABORT, None)] and c.m.state == S.SPEAKING


def test_auto_mode_listens_again_after_playback_drains():
    c = _ctl(button_mode="click")
    c.channel_open = True
    c.press()
    c.tts_start()
    assert c.tts_stop() == [] and c.m.state == S.LISTENING
    assert c.drained() == [(S.LISTEN_START, "auto"), (S.MIC_ON, None)]
    assert c.drained() == []  # only once


def test_second_tts_stop_after_abort_is_ignored():
    c = _ctl(button_mode="click", st=S.SPEAKING)
    c.mode = "manual"
    c.tts_stop()
    assert c.m.state == S.IDLE
    assert c.tts_stop() == [] and c.m.state == S.IDLE


def test_tts_start_only_from_idle_or_listening():
    c = _ctl(st=S.CONNECTING)
    assert c.tts_start() == [] and c.m.state == S.CONNECTING


def test_realtime_keeps_the_mic_running():
    c = _ctl(button_mode="click", listen_mode="realtime")
    c.channel_open = True
    c.press()
    assert _names(c.tts_start()) == [S.FLUSH_PLAYBACK]
    assert c.tts_stop() == [] and c.m.state == S.LISTENING and not c.await_drain


def test_close_returns_to_idle_from_any_session_state():
    for st in (S.CONNECTING, S.LISTENING, S.SPEAKING):
        c = _ctl(st=st)
        c.channel_open = True
        assert _names(c.closed()) == [S.MIC_OFF, S.FLUSH_PLAYBACK]
        assert c.m.state == S.IDLE and not c.channel_open
    c = _ctl(st=S.IDLE)
    assert c.closed() == []


def test_downlink_audio_only_while_speaking():
    c = _ctl(st=S.LISTENING)
    assert not c.accepts_audio()
    c.m.state = S.SPEAKING
    assert c.accepts_audio()


def test_system_reboot():
    c = _ctl(st=S.LISTENING)
    assert _names(c.system("reboot")) == [S.MIC_OFF, S.CLOSE, S.REBOOT]
    assert c.system("shutdown") == []
