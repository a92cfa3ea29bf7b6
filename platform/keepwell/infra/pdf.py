"""HTML to PDF, for invoices, credit notes and reports (WeasyPrint: no browser, no network —
a document may reference only what it embeds)."""

from __future__ import annotations


def _no_fetch(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    raise ValueError(f"documents embed what they show: {url[:80]} is not fetched")


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported on use: it takes a moment to load

    out = HTML(string=html, url_fetcher=_no_fetch).write_pdf()
    assert out is not None
    return bytes(out)
