"""API keys of a company for the REST API. The secret is shown once; only its SHA-256 is kept,
with its first characters (the hint) to tell keys apart. A secret names no company: which
company it belongs to is only in the database.

Each key has scopes; a request outside them is refused naming the scope it needed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..kernel.errors import InvalidDocument, NotFound
from .models import ApiKey, Company

SCOPES = {
    "read": "look up customers, memberships, statements, points and rulesets; simulate",
    "events:write": "post events: charges, purchases, completed services, referrals, redemptions",
    "customers:write": "add customers",
    "memberships:write": "enrol customers in plans",
    "adjustments:write": "post manual adjustments of allowance or points (up to the company's limit)",
    "rewards:write": "redeem catalog rewards for customers; fulfil, ship, deliver or cancel redemptions",
    "visits:write": "schedule, reschedule, cancel and complete visits",
    "admin": "everything, the above included",
}
DEFAULT_SCOPES = ("read", "events:write", "customers:write", "memberships:write")
HINT = 10  # "kw_" and the first 7 characters of the random part


@dataclass(frozen=True)
class KeyGrant:
    """What a live key lets its holder do: act for this company within these scopes."""

    company: str
    scopes: frozenset[str]
    name: str = ""  # what the key is for ("front desk POS"): named on the adjustments it makes

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidDocument.field(
            "scope", f"unknown scope {', '.join(map(repr, unknown))}: use {', '.join(SCOPES)}" if unknown
            else f"give at least one scope: {', '.join(SCOPES)}")
    return sorted(set(scopes), key=list(SCOPES).index)


def create_api_key(session: Session, company: Company, name: str,
                   scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES) -> str:
    """A new key's secret (shown once)."""
    return issue_api_key(session, company, name, scopes)["secret"]


def issue_api_key(session: Session, company: Company, name: str,
                  scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES) -> dict[str, Any]:
    """A new key as `list_keys` shows it, with its secret (the only time it is seen)."""
    wanted = check_scopes(scopes)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise InvalidDocument.field("name", "a name of 1 to 120 characters (what uses the key: \"front desk POS\")")
    secret = f"kw_{secrets.token_urlsafe(32)}"
    key = ApiKey(company_id=company.id, name=name, digest=digest_of(secret), scopes=" ".join(wanted),
                 hint=secret[:HINT])
    session.add(key)
    session.flush()
    return {**_view(key), "secret": secret}


def grant_for_key(session: Session, digest: str) -> KeyGrant | None:
    """The company and scopes of the live key with this digest."""
    row = session.execute(sa.select(Company.slug, ApiKey.scopes, ApiKey.name)
                          .join(ApiKey, ApiKey.company_id == Company.id)
                          .where(ApiKey.digest == digest, ApiKey.revoked_at.is_(None))).first()
    return None if row is None else KeyGrant(row.slug, frozenset(row.scopes.split()), row.name)


def list_keys(session: Session, company: Company) -> list[dict[str, Any]]:
    rows = session.scalars(sa.select(ApiKey).where(ApiKey.company_id == company.id).order_by(ApiKey.id))
    return [_view(k) for k in rows]


def _view(k: ApiKey) -> dict[str, Any]:
    return {"id": k.id, "name": k.name, "hint": k.hint, "scopes": k.scopes.split(),
            "created_at": k.created_at.isoformat(), "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None}


def revoke(session: Session, company: Company, key_id: int, at: datetime) -> str:
    """Revoke one of the company's keys; the answer is its digest (to forget it in caches)."""
    key = session.scalar(sa.select(ApiKey).where(ApiKey.company_id == company.id, ApiKey.id == key_id))
    if key is None:
        raise NotFound(f"no API key {key_id} in company {company.slug} (see `keepwell apikeys list`)")
    if key.revoked_at is None:
        key.revoked_at = at
    return key.digest
