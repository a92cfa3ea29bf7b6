"""One tree of errors. Each class has a stable `code` that the CLI prints and the API returns;
none knows about HTTP: the web interface maps codes to statuses in one table of its own.

    KeepwellError                 error
      NotFound                    not_found
      Conflict                    conflict
      InvalidDocument             invalid          (every problem, each with its path)
        CompileError              compile_error
          EngineLimit             engine_limit
      MoneyError                  invalid_amount
      Declined                    declined         (a valid request the business says no to)
      Unauthorized                unauthorized
      Forbidden                   forbidden
      NotConfigured               not_configured
      SchemaOutOfDate             schema_out_of_date
      DeliveryError               delivery_failed  (a message that could not be sent)
      EngineFailure               engine_failure
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cards import mask


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (file and path) and why."""

    path: str
    message: str
    file: str = ""
    label: str = ""  # the field's name in words, when the message starts with it ("Allowance amount")

    def __post_init__(self) -> None:  # a card number quoted back is masked
        object.__setattr__(self, "path", mask(self.path))
        object.__setattr__(self, "message", mask(self.message))

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file or None, "path": self.path, "message": self.message}


class KeepwellError(Exception):
    code = "error"

    def __init__(self, message: str, **details: Any):
        message = mask(message)  # no card number in an error message, wherever it is shown or logged
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        out.update({k: v for k, v in self.details.items() if v is not None})
        return out


class NotFound(KeepwellError):
    code = "not_found"


class Conflict(KeepwellError):
    code = "conflict"


class InvalidDocument(KeepwellError):
    """A ruleset, event or request that failed validation; carries every problem found."""

    code = "invalid"

    def __init__(self, message: str, problems: list[Problem]):
        super().__init__(message)
        self.problems = list(problems)

    @classmethod
    def field(cls, path: str, message: str, summary: str | None = None) -> InvalidDocument:
        """One problem with one field: `InvalidDocument.field("name", "is required")`."""
        return cls(summary or f"{path}: {message}", [Problem(path, message)])

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "errors": [p.to_dict() for p in self.problems]}

    def __str__(self) -> str:
        return "\n".join([self.message] + [str(p) for p in self.problems])


class CompileError(InvalidDocument):
    code = "compile_error"


class EngineLimit(CompileError):
    code = "engine_limit"


class MoneyError(KeepwellError, ValueError):
    """An amount that is not a decimal amount of whole cents."""

    code = "invalid_amount"


class Declined(KeepwellError):
    """The request is valid but cannot be honoured (no balance left, membership expired...).
    An event declined is stored with this reason, so a retry of the same id gets the same answer."""

    code = "declined"

    def __init__(self, reason: str, message: str, **details: Any):
        super().__init__(message, **details)
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason, **{k: v for k, v in super().to_dict().items()
                                                            if k != "code"}}


class Unauthorized(KeepwellError):
    code = "unauthorized"


class Forbidden(KeepwellError):
    code = "forbidden"


class NotConfigured(KeepwellError):
    """Something this action needs is not set up (a setting, a service)."""

    code = "not_configured"


class SchemaOutOfDate(KeepwellError):
    code = "schema_out_of_date"


class DeliveryError(KeepwellError):
    """A message that could not be delivered; `retryable` says whether trying again may help."""

    code = "delivery_failed"

    def __init__(self, message: str, retryable: bool = True, http_status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.http_status = http_status  # what the receiving server answered, when it answered


class EngineFailure(KeepwellError):
    code = "engine_failure"
