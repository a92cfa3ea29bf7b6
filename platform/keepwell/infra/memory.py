"""The garbage collector, held off while a batch is processed.

A batch of events makes hundreds of thousands of short-lived objects (dicts, rows, closures of
the undo log); each of them counts towards the collector's next pass, and a full pass walks every
long-lived object of the process too (modules, schemas, compiled rules, SQLAlchemy's caches): about
a tenth of ingest's CPU. Almost none of a batch's garbage is cyclic, so reference counting frees it
as it goes; the collector runs once the batch is done. Batches are bounded (a few hundred events),
so what the pause can hold back is too.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside (threads share the collector: the last one out restores it)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
