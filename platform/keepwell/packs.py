"""Industry template packs: a folder of rulesets plus sample scenarios with expected results."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .documents import load_file
from .errors import InvalidDocument
from .resources import rulesets_dir
from .samples import Outcome, run_scenario
from .validation import validate_ruleset


@dataclass(frozen=True)
class Pack:
    name: str
    path: Path

    @property
    def ruleset_files(self) -> list[Path]:
        return sorted(p for p in self.path.glob("*.y*ml") if p.name not in ("pack.yaml", "pack.yml"))

    @property
    def scenario_files(self) -> list[Path]:
        return sorted((self.path / "samples").glob("*.y*ml"))


def find(name_or_path: str) -> Pack:
    p = Path(name_or_path)
    if not p.is_dir():
        p = rulesets_dir() / name_or_path
    if not p.is_dir():
        raise FileNotFoundError(f"no pack {name_or_path!r}")
    return Pack(p.name, p)


def available() -> list[Pack]:
    return [Pack(p.name, p) for p in sorted(rulesets_dir().iterdir()) if p.is_dir()]


def documents(pack: Pack) -> list[tuple[str, dict]]:
    docs = [(str(f), load_file(f)) for f in pack.ruleset_files]
    problems = [p for f, d in docs for p in validate_ruleset(d, f)]
    if problems:
        raise InvalidDocument(f"pack {pack.name} has invalid rulesets", problems)
    return docs


def install(app, pack: Pack, company: str, author: str = "pack", effective_from: date = date(1970, 1, 1)) -> list[str]:
    return [app.publish(doc, author, effective_from, file=f, company=company).ref for f, doc in documents(pack)]


def test(app, pack: Pack, timezone: str = "UTC") -> list[Outcome]:
    """Each scenario runs in a fresh company of its own, with the pack installed."""
    outcomes = []
    documents(pack)  # fail fast, with every problem, before any scenario runs
    for scenario in pack.scenario_files:
        company = f"packtest-{pack.name}-{secrets.token_hex(4)}"
        tz = (load_file(scenario) or {}).get("timezone", timezone)
        app.add_company(company, f"Pack test {pack.name}", tz)
        install(app, pack, company)
        outcomes.append(run_scenario(app, scenario, company=company))
    return outcomes
