"""What one replica's attempt found about a centre, shared with the others for a few seconds.

When a centre dies, every replica whose active copy it held fails over at once, and each would first try
to fence the dead store itself (a connection attempt up to a timeout). The first to find it unreachable
says so here; the others, within `FRESH_S`, take its word instead of waiting on the same dead store, so a
thousand failovers against one dead centre cost one timeout, not a thousand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

FRESH_S = 5.0


class Unreachable:
    """Centres found unreachable lately, by name, with what was found."""

    def __init__(self, fresh_s: float = FRESH_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.fresh_s, self.clock = fresh_s, clock
        self._lock = threading.Lock()
        self._found: dict[str, tuple[float, str]] = {}

    def note(self, centre: str, why: str) -> None:
        with self._lock:
            self._found[centre] = (self.clock(), why)

    def clear(self, centre: str) -> None:
        """The centre answered: the next replica tries it again."""
        with self._lock:
            self._found.pop(centre, None)

    def recent(self, centre: str) -> str | None:
        """Why the centre was found unreachable, if that was within `fresh_s`; else None."""
        with self._lock:
            found = self._found.get(centre)
        if found is None or self.clock() - found[0] > self.fresh_s:
            return None
        return found[1]


UNREACHABLE = Unreachable()
