"""The rulesets' tables. Published versions are append-only (the migrations install triggers
that refuse UPDATE and DELETE); drafts are edited freely until published."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..infra.tables import Base, BigId, utcnow


class Ruleset(Base):
    __tablename__ = "rulesets"
    __table_args__ = (sa.UniqueConstraint("company_id", "key", name="uq_rulesets_company_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"))
    key: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(40))
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class RulesetVersion(Base):
    __tablename__ = "ruleset_versions"
    __table_args__ = (sa.UniqueConstraint("ruleset_id", "version", name="uq_ruleset_versions_ruleset_version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ruleset_id: Mapped[int] = mapped_column(sa.ForeignKey("rulesets.id"))
    version: Mapped[int] = mapped_column(sa.Integer)
    content: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    author: Mapped[str] = mapped_column(sa.String(200))
    effective_from: Mapped[date] = mapped_column(sa.Date)
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class RulesetDraft(Base):
    __tablename__ = "ruleset_drafts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ruleset_id: Mapped[int] = mapped_column(sa.ForeignKey("rulesets.id"), unique=True)
    content: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    author: Mapped[str] = mapped_column(sa.String(200))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow)
