"""What every command shares: the process's settings and service, dates, errors, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any, TypeVar

import click

from ...infra.settings import Settings
from ...kernel.errors import InvalidDocument, KeepwellError
from ...usecases import Keepwell
from ..wiring import open_app

F = TypeVar("F", bound=Callable[..., Any])


class Obj:
    """The command's context: settings read once, the service opened on first use."""

    def __init__(self, company: str | None):
        self.settings = Settings.from_env()
        self.company: str = company or self.settings.company
        self._app: Keepwell | None = None

    @property
    def app(self) -> Keepwell:
        if self._app is None:
            self._app = open_app(self.settings)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


def parse_date(_ctx: Any, _param: Any, value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def handled(fn: F) -> F:
    """Report our errors as one clear message (or one line per problem) and exit 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InvalidDocument as exc:
            click.echo(f"error: {exc.message}", err=True)
            for p in exc.problems:
                click.echo(str(p), err=True)
            sys.exit(1)
        except KeepwellError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def emit(data: Any, as_json: bool, human: Callable[[Any], Any]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        human(data)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (amounts as decimal strings).")


def parse_settings(items: tuple[str, ...]) -> dict[str, str]:
    """--set PARAM=VALUE options as a mapping."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise InvalidDocument.field("--set", f"{item!r}: use PARAM=VALUE", f"--set {item!r}: use PARAM=VALUE")
        out[name.strip()] = value.strip()
    return out
