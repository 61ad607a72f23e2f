# lib/backoff: doubling up to a cap, jitter only shortens, limits, bad params.
from backoff import Backoff


def test_doubles_to_cap_without_jitter():
    b = Backoff(10000, 60000, jitter=0)
    assert [b.next() for _ in range(6)] == [10000, 20000, 40000, 60000, 60000, 60000]
    b.reset()
    assert b.next() == 10000


def test_limit_like_ota_retries():
    b = Backoff(10000, 10000 << 9, jitter=0, limit=10)
    seq = [b.next() for _ in range(10)]
    assert seq == [10000 << i for i in range(10)], seq
    assert b.exhausted and b.next() is None


def test_jitter_stays_in_band():
    vals = iter([0, 65535, 32768])
    b = Backoff(1000, 8000, jitter=0.5, rand=lambda: next(vals))
    assert b.next() == 1000  # rand 0 -> full delay
    d = b.next()  # base 2000, rand max -> about half
    assert 1000 <= d <= 1001, d
    assert b.next() == 3000  # base 4000, rand half -> 3000


def test_real_jitter_spreads():
    seen = set()
    for _ in range(20):
        b = Backoff(1000, 1000, jitter=0.25)
        d = b.next()
        assert 750 <= d <= 1000, d
        seen.add(d)
    assert len(seen) > 3, seen


def test_bad_parameters():
    for args in ((0, 10), (100, 10), (10, 100, 0.5), (10, 100, 2, 1.5)):
        try:
            Backoff(*args)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (args,))
