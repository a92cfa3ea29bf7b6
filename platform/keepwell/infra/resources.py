"""Where the data the code needs at run time lives: schemas/ and rulesets/.

An installed wheel carries them inside the package (keepwell/_data/...); a source checkout
has them at the repository root. Both must work.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # keepwell/


@cache
def data_dir(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"keepwell data folder {name!r} not found (looked in the package and the checkout)")


def schemas_dir() -> Path:
    return data_dir("schemas")


def rulesets_dir() -> Path:
    """The template packs shipped with Keepwell (one folder each)."""
    return data_dir("rulesets")
