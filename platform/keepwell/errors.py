"""One tree of errors, each with a stable code that the CLI and API report."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (file and JSON path) and why."""

    path: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.path}: {self.message}"


class KeepwellError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        out.update({k: v for k, v in self.details.items() if v is not None})
        return out


class NotFound(KeepwellError):
    code = "not_found"
    http_status = 404


class Conflict(KeepwellError):
    code = "conflict"
    http_status = 409


class InvalidDocument(KeepwellError):
    """A ruleset or event that failed validation; carries every problem found."""

    code = "invalid"
    http_status = 422

    def __init__(self, message: str, problems: list[Problem]):
        super().__init__(message)
        self.problems = list(problems)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "errors": [{"file": p.file or None, "path": p.path, "message": p.message} for p in self.problems],
        }

    def __str__(self) -> str:
        return "\n".join([self.message] + [str(p) for p in self.problems])


class CompileError(InvalidDocument):
    code = "compile_error"


class EngineLimit(CompileError):
    code = "engine_limit"
