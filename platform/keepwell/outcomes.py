"""Business outcomes that are not failures of the request: the event is recorded, nothing moves."""

from __future__ import annotations

from .errors import KeepwellError


class Declined(KeepwellError):
    """The event is valid but cannot be honoured (no balance left, membership expired...).
    It is stored with this reason, so a retry of the same id gets the same answer."""

    code = "declined"
    http_status = 402

    def __init__(self, reason: str, message: str, **details):
        super().__init__(message, **details)
        self.reason = reason
