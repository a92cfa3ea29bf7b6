"""A small map whose entries run out: what a process may trust for a few seconds."""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries kept `seconds` after they were put (0: nothing is kept). Bounded: past `limit`
    entries it starts afresh, so a flood of new keys cannot grow it."""

    def __init__(self, seconds: float, limit: int = 10_000):
        self.seconds, self.limit = seconds, limit
        self._entries: dict[K, tuple[V, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        hit = self._entries.get(key)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, key: K, value: V) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.limit:
                self._entries.clear()
            self._entries[key] = (value, time.monotonic() + self.seconds)

    def forget(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
