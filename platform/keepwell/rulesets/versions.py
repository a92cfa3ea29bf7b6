"""Ruleset versions: drafts, immutable published versions, the version in force on a date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..infra.unit import unit_of
from ..kernel.errors import InvalidDocument, NotFound, Problem
from .documents import content_hash
from .key_order import in_schema_order, ruleset_diff
from .models import Ruleset, RulesetDraft, RulesetVersion
from .validation import validate_ruleset


@dataclass(frozen=True)
class Published:
    ref: str
    version: int
    created: bool  # False when the content equals the newest version: nothing new is published


def ref(ruleset: Ruleset, version: RulesetVersion) -> str:
    return f"{ruleset.key}@{version.version}"


def _ruleset(session: Session, company_id: int, key: str) -> Ruleset | None:
    return session.scalar(sa.select(Ruleset).where(Ruleset.company_id == company_id, Ruleset.key == key))


def get_ruleset(session: Session, company_id: int, key: str) -> Ruleset:
    rs = _ruleset(session, company_id, key)
    if rs is None:
        raise NotFound(f"no ruleset {key!r}")
    return rs


def publish(
    session: Session,
    company_id: int,
    doc: dict,
    author: str,
    effective_from: date,
    note: str | None = None,
    file: str = "",
) -> Published:
    problems = validate_ruleset(doc, file)
    if problems:
        raise InvalidDocument(f"{file or _name_of(doc)} is not valid", problems)
    doc = in_schema_order(doc)
    key = doc["metadata"]["id"]
    rs = _ruleset(session, company_id, key)
    if rs is None:
        rs = Ruleset(company_id=company_id, key=key, kind=doc["kind"], name=doc["metadata"]["name"])
        session.add(rs)
        session.flush()
    elif rs.kind != doc["kind"]:
        if latest_version(session, rs.id) is not None:
            raise InvalidDocument("kind changed", [_kind_problem(rs, doc, file)])
        rs.kind = doc["kind"]  # only a draft so far: the first published version settles the kind
    digest = content_hash(doc)
    latest = latest_version(session, rs.id)
    if latest is not None and latest.content_hash == digest and latest.effective_from == effective_from:
        return Published(ref(rs, latest), latest.version, created=False)
    number = (latest.version + 1) if latest else 1
    v = RulesetVersion(
        ruleset_id=rs.id, version=number, content=doc, content_hash=digest, author=author,
        effective_from=effective_from, note=note,
    )
    session.add(v)
    rs.name = doc["metadata"]["name"]
    session.flush()
    unit_of(session).memo.clear()  # rulesets in force, as this transaction sees them
    return Published(ref(rs, v), number, created=True)


def _name_of(doc: object) -> str:
    """What to call a document in an error, whatever shape it has."""
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    key = meta.get("id") if isinstance(meta, dict) else None
    return key if isinstance(key, str) and key else "ruleset"


def _kind_problem(rs: Ruleset, doc: dict, file: str) -> Problem:
    return Problem("kind", f"ruleset {rs.key!r} is a {rs.kind}; a new version cannot change it to {doc['kind']}", file)


def latest_version(session: Session, ruleset_id: int) -> RulesetVersion | None:
    return session.scalar(
        sa.select(RulesetVersion)
        .where(RulesetVersion.ruleset_id == ruleset_id)
        .order_by(RulesetVersion.version.desc())
        .limit(1)
    )


def get_version(session: Session, company_id: int, spec: str) -> tuple[Ruleset, RulesetVersion]:
    """`id` (newest version) or `id@N`."""
    key, _, number = spec.partition("@")
    rs = get_ruleset(session, company_id, key)
    if number:
        if not number.isdigit():
            raise NotFound(f"{spec!r}: a version is a whole number, as in {key}@2")
        v = session.scalar(
            sa.select(RulesetVersion).where(RulesetVersion.ruleset_id == rs.id, RulesetVersion.version == int(number))
        )
    else:
        v = latest_version(session, rs.id)
    if v is None:
        raise NotFound(f"no published version {spec!r}")
    return rs, v


def in_force(session: Session, company_id: int, key: str, on: date) -> tuple[Ruleset, RulesetVersion]:
    """The published version in force on a date: the newest one whose effective_from has come."""
    rs = get_ruleset(session, company_id, key)
    v = session.scalar(
        sa.select(RulesetVersion)
        .where(RulesetVersion.ruleset_id == rs.id, RulesetVersion.effective_from <= on)
        .order_by(RulesetVersion.effective_from.desc(), RulesetVersion.version.desc())
        .limit(1)
    )
    if v is None:
        raise NotFound(f"no version of {key!r} is in force on {on.isoformat()}")
    return rs, v


def list_rulesets(session: Session, company_id: int) -> list[dict]:
    rows = []
    for rs in session.scalars(sa.select(Ruleset).where(Ruleset.company_id == company_id).order_by(Ruleset.key)):
        latest = latest_version(session, rs.id)
        draft = session.scalar(sa.select(RulesetDraft).where(RulesetDraft.ruleset_id == rs.id))
        rows.append({
            "id": rs.key,
            "kind": rs.kind,
            "name": rs.name,
            "latest": ref(rs, latest) if latest else None,
            "effective_from": latest.effective_from.isoformat() if latest else None,
            "has_draft": draft is not None,
        })
    return rows


def versions_of(session: Session, company_id: int, key: str) -> list[dict]:
    rs = get_ruleset(session, company_id, key)
    return [
        {
            "ref": ref(rs, v), "version": v.version, "content_hash": v.content_hash, "author": v.author,
            "created_at": v.created_at.isoformat(), "effective_from": v.effective_from.isoformat(), "note": v.note,
        }
        for v in session.scalars(
            sa.select(RulesetVersion).where(RulesetVersion.ruleset_id == rs.id).order_by(RulesetVersion.version)
        )
    ]


def diff(session: Session, company_id: int, a: str, b: str) -> str:
    """Unified diff of two versions' canonical YAML (`id@1` vs `id@2`; a bare id is the newest)."""
    ra, va = get_version(session, company_id, a)
    rb, vb = get_version(session, company_id, b)
    return ruleset_diff(va.content, vb.content, ref(ra, va), ref(rb, vb))


def rollback(
    session: Session, company_id: int, key: str, to_version: int, author: str, effective_from: date
) -> Published:
    """Publish an older version's content again as a new version: history is never rewritten."""
    _rs, old = get_version(session, company_id, f"{key}@{to_version}")
    return publish(session, company_id, old.content, author, effective_from, note=f"rollback to version {to_version}")


def save_draft(session: Session, company_id: int, doc: dict, author: str) -> list:
    """Store a draft (valid or not) and return its problems; publishing it validates again."""
    key = (doc.get("metadata") or {}).get("id")
    kind = doc.get("kind")
    if not key or not kind:
        raise InvalidDocument("a draft needs kind and metadata.id", [Problem("metadata.id", "required")])
    rs = _ruleset(session, company_id, key)
    if rs is None:
        rs = Ruleset(company_id=company_id, key=key, kind=kind, name=(doc.get("metadata") or {}).get("name", key))
        session.add(rs)
        session.flush()
    elif rs.kind != kind and latest_version(session, rs.id) is None:
        rs.kind = kind  # nothing published yet: the draft may still change its kind
    doc = in_schema_order(doc)
    draft = session.scalar(sa.select(RulesetDraft).where(RulesetDraft.ruleset_id == rs.id))
    if draft is None:
        session.add(RulesetDraft(ruleset_id=rs.id, content=doc, author=author))
    else:
        draft.content, draft.author = doc, author
    session.flush()
    return validate_ruleset(doc)


def get_draft(session: Session, company_id: int, key: str) -> RulesetDraft:
    rs = get_ruleset(session, company_id, key)
    draft = session.scalar(sa.select(RulesetDraft).where(RulesetDraft.ruleset_id == rs.id))
    if draft is None:
        raise NotFound(f"ruleset {key!r} has no draft")
    return draft


def publish_draft(session: Session, company_id: int, key: str, author: str, effective_from: date,
                  note: str | None = None) -> Published:
    draft = get_draft(session, company_id, key)
    published = publish(session, company_id, draft.content, author, effective_from, note=note)
    session.delete(draft)
    return published


def all_versions(session: Session, company_id: int) -> list[tuple[int, int, dict, str, date]]:
    """Every published version of the company: (ruleset, version, content, author, effective_from)."""
    return [(v.ruleset_id, v.version, v.content, v.author, v.effective_from) for v in session.scalars(
        sa.select(RulesetVersion).join(Ruleset, Ruleset.id == RulesetVersion.ruleset_id)
        .where(Ruleset.company_id == company_id).order_by(RulesetVersion.ruleset_id, RulesetVersion.version))]


def of_kind(session: Session, company_id: int, kind: str) -> list[Ruleset]:
    """The company's rulesets of one kind, by id."""
    return list(session.scalars(sa.select(Ruleset).where(Ruleset.company_id == company_id, Ruleset.kind == kind)
                                .order_by(Ruleset.key)))
