"""Ids of the records people copy and paste (customers, memberships): short, prefixed by what
they name, random so that they reveal nothing about a company's size."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
