"""The platform itself: is it up, and on which schema."""

from __future__ import annotations

from typing import Any

from .app import Keepwell


def health(app: Keepwell) -> dict[str, Any]:
    return {"ok": True, "schema": app.database.revision()}
