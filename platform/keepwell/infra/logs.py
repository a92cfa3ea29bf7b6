"""Logging that never writes a card number: installed by every composition root, it masks any
card number in a log line — whoever logged it (our code, Flask, gunicorn's access log, a
library quoting a request)."""

from __future__ import annotations

import logging
from typing import Any

from ..kernel.cards import mask

_installed = False


def mask_card_numbers() -> None:
    """Every log record made from now on has its message masked (once per process)."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # a broken format string: logging reports it as it would have
            return record
        masked = mask(text)
        if masked != text:
            record.msg, record.args = masked, None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
