# firmware/liveness: keepalive due every interval, dead only after the
# timeout with nothing received, and any frame (a PONG included) resets it.
from firmware.liveness import DEAD, OK, PING, Liveness
from host_tests.upy.checks import raises


def test_pings_every_interval_while_frames_come():
    lv = Liveness(10000, 25000)
    lv.start(0)
    seen = [lv.check(t, t) for t in range(0, 31000, 1000)]  # a frame every second
    assert [t * 1000 for t, v in enumerate(seen) if v == PING] == [10000, 20000, 30000]
    assert DEAD not in seen


def test_an_idle_link_that_answers_pings_stays_alive():
    # The server never speaks except for the PONG 50 ms after each PING:
    # a slow LLM or an idle session must not look dead.
    lv = Liveness(10000, 25000)
    lv.start(0)
    last_rx = 0
    for t in range(0, 300000, 1000):
        v = lv.check(t, last_rx)
        assert v != DEAD, t
        if v == PING:
            last_rx = t + 50


def test_a_hung_peer_is_dead_at_the_timeout():
    lv = Liveness(10000, 25000)
    lv.start(0)
    verdicts = [(t, lv.check(t, 0)) for t in range(0, 26000, 1000)]
    assert [t for t, v in verdicts if v == DEAD] == [25000]
    assert [t for t, v in verdicts if v == PING] == [10000, 20000]
    assert verdicts[1] == (1000, OK)


def test_start_restarts_the_interval():
    lv = Liveness(10000, 25000)
    lv.start(0)
    assert lv.check(10000, 10000) == PING
    lv.start(15000)  # a new session
    assert lv.check(20000, 20000) == OK and lv.check(25000, 25000) == PING


def test_bad_parameters():
    raises(lambda: Liveness(0, 1000), "keepalive")
    raises(lambda: Liveness(1000, -1), "timeout")
