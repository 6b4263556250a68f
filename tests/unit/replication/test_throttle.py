from __future__ import annotations

import threading

import pytest

from datacloud.replication.throttle import TokenBucket, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50Mi", 50 * 1024**2),
        ("10M", 10_000_000),
        ("4096", 4096),
        ("1.5Ki", 1536),
        ("8MiB", 8 * 1024**2),
        ("2gi/s", 2 * 1024**3),
        ("100k", 100_000),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["abc", "", "10Xi", "-5M", "0", "M", "1 2"])
def test_parse_size_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match=r"size|byte"):
        parse_size(text)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_token_bucket_holds_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, burst=100, clock=clock, sleep=clock.sleep)

    for _ in range(50):
        bucket.take(100)

    # 5000 bytes at 1000 B/s, less the initial burst of 100.
    assert clock.now == pytest.approx(4.9)


def test_token_bucket_splits_requests_larger_than_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, burst=100, clock=clock, sleep=clock.sleep)
    bucket.take(1000)
    assert clock.now == pytest.approx(0.9)


def test_token_bucket_refills_while_idle() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, burst=500, clock=clock, sleep=clock.sleep)
    bucket.take(500)
    clock.now += 10  # idle: refills to the burst, not beyond
    bucket.take(500)
    assert clock.now == pytest.approx(10)
    bucket.take(500)
    assert clock.now == pytest.approx(10.5)


def test_token_bucket_is_shared_by_threads() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000, burst=100, clock=clock, sleep=clock.sleep)

    def worker() -> None:
        for _ in range(10):
            bucket.take(100)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert clock.now == pytest.approx(3.9)
