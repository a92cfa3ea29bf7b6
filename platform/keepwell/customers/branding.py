"""How a company's member portal looks: its colour (the header and buttons, behind white text,
so it must be dark enough to read — WCAG AA, 4.5:1) and its logo (a PNG or JPEG of at most 200 KB:
no SVG, which could carry a script)."""

from __future__ import annotations

import re

from ..kernel.errors import InvalidDocument

HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
MOST_LOGO = 200_000
KINDS = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def _luminance(color: str) -> float:
    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_with_white(color: str) -> float:
    return 1.05 / (_luminance(color) + 0.05)


def clean_color(color: str) -> str | None:
    """"#0b5cad" as stored (lower case); "" for Keepwell's own blue."""
    color = (color or "").strip()
    if not color:
        return None
    if not HEX.match(color):
        raise InvalidDocument.field("brand_color", "Brand colour must be a colour like #0b5cad")
    ratio = contrast_with_white(color)
    if ratio < 4.5:
        raise InvalidDocument.field("brand_color", f"Brand colour {color} is too light for white text on it "
                                    f"(contrast {ratio:.1f}:1, at least 4.5:1 is needed): choose a darker shade")
    return color.lower()


def logo_type(data: bytes) -> str:
    """The logo's media type, or a clear refusal."""
    if len(data) > MOST_LOGO:
        raise InvalidDocument.field("logo", f"The logo must be at most {MOST_LOGO // 1000} KB")
    for magic, kind in KINDS.items():
        if data.startswith(magic):
            return kind
    raise InvalidDocument.field("logo", "The logo must be a PNG or JPEG image")
