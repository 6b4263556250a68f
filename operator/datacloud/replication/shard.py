"""Deterministic split of a bucket's key space, so N processes together sync it once with no overlap.

A key belongs to shard `hash(key) mod N`, where the hash is the first 8 bytes of SHA-1 over the key
relative to the synced prefix (so source and target agree on ownership whatever their prefixes).
Indexes are 0-based to match a Kubernetes Indexed Job's completion index.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= i < N and N >= 1")

    @property
    def whole(self) -> bool:
        return self.count == 1

    def owns(self, relative_key: str) -> bool:
        return self.whole or shard_of(relative_key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(relative_key: str, count: int) -> int:
    digest = hashlib.sha1(relative_key.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> Shard:
    """Parse `i/N` (0 <= i < N); ValueError with a readable message otherwise."""
    index_text, sep, count_text = text.strip().partition("/")
    if not sep or not index_text.isdigit() or not count_text.isdigit():
        raise ValueError(f"--shard must look like i/N with whole numbers, e.g. 0/4, not {text!r}")
    index, count = int(index_text), int(count_text)
    if count < 1 or index >= count:
        raise ValueError(f"--shard {text}: the index must be 0..N-1 and N at least 1")
    return Shard(index, count)
