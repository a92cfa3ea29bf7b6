"""Industry template packs: list, show, install (one transaction), preview, test, build."""

from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path
from typing import Any

from ..infra.context import Ctx
from ..kernel.errors import NotFound
from ..rulesets import packs, versions
from ..rulesets.documents import load_file
from ..rulesets.packs import PARAM_TYPES, Pack, resolve_values
from . import companies
from .app import Keepwell, reading, use_case
from .scenarios import Outcome, run_scenario

__all__ = [
    "PARAM_TYPES",
    "Pack",
    "available",
    "resolve_values",
    "build",
    "documents",
    "find",
    "install",
    "preview",
    "test",
]

DEFAULT_FROM = date(1970, 1, 1)  # in force at once, and for back-dated events


def find(name_or_path: str) -> Pack:
    """A shipped pack by name, or an archive made by `build`."""
    return packs.find(name_or_path)


def shipped(name: str) -> Pack:
    """A pack of the packs folder, by its name only: what a web page may load (never a path
    the server would resolve, such as `..`)."""
    for pack in packs.available():
        if pack.name == name:
            return pack
    raise NotFound(f"there is no pack {name!r}")


def available() -> list[Pack]:
    return packs.available()


def documents(pack: Pack, overrides: dict[str, str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The pack's rulesets with its parameters filled in, every one validated."""
    return packs.documents(pack, overrides)


def build(pack: Pack, out_dir: Path) -> Path:
    return packs.build(pack, out_dir)


@use_case
def install(ctx: Ctx, pack: Pack, author: str = "pack", effective_from: date = DEFAULT_FROM,
            overrides: dict[str, str] | None = None) -> list[str]:
    """Publish every ruleset of the pack in one transaction: all of them or none."""
    docs = packs.documents(pack, overrides)
    return [versions.publish(ctx.session, ctx.company.id, doc, author, effective_from, file=f).ref for f, doc in docs]


@reading
def preview(ctx: Ctx, pack: Pack, overrides: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """What installing would publish, against what is published now: new, unchanged, or a diff."""
    docs = packs.documents(pack, overrides)
    current = {}
    for _f, doc in docs:
        key = doc["metadata"]["id"]
        try:
            rs, v = versions.get_version(ctx.session, ctx.company.id, key)
        except NotFound:
            continue
        current[key] = (versions.ref(rs, v), v.version, v.content)
    return packs.changes(pack, docs, current)


def test(app: Keepwell, pack: Pack, timezone: str = "UTC") -> list[Outcome]:
    """Each scenario runs in a fresh company of its own, with the pack installed (defaults, or
    the scenario's own `parameters`)."""
    outcomes = []
    packs.documents(pack)  # fail fast, with every problem, before any scenario runs
    for scenario in pack.scenario_files:
        doc = load_file(scenario) or {}
        assert isinstance(doc, dict)
        company = f"packtest-{pack.name}-{secrets.token_hex(4)}"
        companies.add_company(app, company, f"Pack test {pack.name}", doc.get("timezone", timezone))
        overrides = {
            k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (doc.get("parameters") or {}).items()
        }
        install(app, company, pack, overrides=overrides)
        outcomes.append(run_scenario(app, scenario, company=company))
    return outcomes
