"""HTML to PDF, for invoices, credit notes and reports (WeasyPrint: no browser, no network —
a document may reference only what it embeds)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..kernel import calendar_words


@cache
def _templates(folder: str) -> Environment:
    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["day"] = calendar_words.day
    return env


def render_html(folder: Path, name: str, **values: Any) -> str:
    """A document template of an area (its `templates` folder), filled in: HTML escaped."""
    return _templates(str(folder)).get_template(name).render(**values)


def _no_fetch(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    raise ValueError(f"documents embed what they show: {url[:80]} is not fetched")


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported on use: it takes a moment to load

    out = HTML(string=html, url_fetcher=_no_fetch).write_pdf()
    assert out is not None
    return bytes(out)
