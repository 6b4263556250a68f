"""A token bucket that limits the bytes per second moved by all copy workers together."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

_UNITS = {
    "": 1,
    "k": 1000,
    "ki": 1024,
    "m": 1000**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gi": 1024**3,
    "t": 1000**4,
    "ti": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?(?:/s)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from `50Mi`, `10M`, `1.5Gi`, `4096`, `8MiB`, `50Mi/s` (Ki = 1024, K = 1000)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; use a number with an optional unit such as 50Mi or 10M")
    value = float(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    if value < 1:
        raise ValueError(f"{text!r} is less than one byte")
    return int(value)


class TokenBucket:
    """Grants bytes at `rate` per second with bursts up to `burst` bytes; thread-safe.

    `take` blocks until the bytes are granted. Requests larger than the burst are granted in pieces,
    so a big part never waits for a bucket that can never hold it.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        # A quarter of a second of traffic smooths bursts without letting a worker run far ahead.
        self.burst = float(burst) if burst else max(self.rate / 4, 64 * 1024)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self, amount: int) -> None:
        remaining = float(amount)
        while remaining > 0:
            piece = min(remaining, self.burst)
            self._take_piece(piece)
            remaining -= piece

    def _take_piece(self, piece: float) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            # Go into debt and sleep it off outside the lock: waiters queue fairly on the lock order.
            self._tokens -= piece
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


class Unlimited:
    """The no-op stand-in for a TokenBucket when no bandwidth limit is set."""

    def take(self, amount: int) -> None:
        return None


Throttle = TokenBucket | Unlimited
