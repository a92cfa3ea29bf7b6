"""HTML to PDF, for invoices, credit notes and reports (WeasyPrint: no browser, no network —
a document may reference only what it embeds)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from ..kernel import calendar_words


@cache
def _templates(folder: str) -> Environment:
    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["day"] = calendar_words.day
    env.filters["css_text"] = css_text
    return env


def css_text(value: object) -> Markup:
    """Text inside a CSS string (a page footer's `content: "..."`): HTML escaping would show
    "&amp;" there; instead quotes, backslashes and angle brackets are CSS-escaped."""
    text = str(value)
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("<", "\\3c "), (">", "\\3e "), ("\n", " ")):
        text = text.replace(raw, escaped)
    return Markup(text)


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
