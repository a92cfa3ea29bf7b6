"""API keys of a company for the REST API. The secret is shown once; only its SHA-256 is kept."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .models import ApiKey, Company


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, company: Company, name: str) -> str:
    secret = f"kw_{company.slug}_{secrets.token_urlsafe(24)}"
    session.add(ApiKey(company_id=company.id, name=name, digest=digest_of(secret)))
    session.flush()
    return secret


def company_for_key(session: Session, digest: str) -> str | None:
    """The slug of the company whose live key has this digest."""
    return session.scalar(sa.select(Company.slug).join(ApiKey, ApiKey.company_id == Company.id)
                          .where(ApiKey.digest == digest, ApiKey.revoked_at.is_(None)))
