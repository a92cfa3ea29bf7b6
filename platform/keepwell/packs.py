"""Industry template packs: a folder with a manifest (pack.yaml), rulesets written against the
manifest's parameters, and sample scenarios with the results they must give.

    # pack.yaml
    name: hvac
    version: 1.0.0
    description: Comfort Club maintenance memberships for HVAC contractors
    keepwell: ">=0.1"
    parameters:
      premium_allowance: {type: money, default: "500.00", help: "Yearly repair allowance of the Premium tier"}

A ruleset refers to a parameter as ${premium_allowance} inside a string; `install --set
premium_allowance=750.00` fills it in. Parameters are checked by type before anything is
substituted, and the rulesets are validated after.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .documents import load_file, parse_text
from .errors import InvalidDocument, NotFound, Problem
from .money import MoneyError, to_cents
from .resources import rulesets_dir
from .samples import Outcome, run_scenario
from .validation import validate_ruleset

MANIFEST = "pack.yaml"
PARAM_TYPES = ("money", "integer", "percent", "string", "boolean")
_PLACEHOLDER = re.compile(r"\$\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: object
    help: str = ""


@dataclass(frozen=True)
class Pack:
    name: str
    path: Path
    version: str = "0"
    description: str = ""
    keepwell: str = ""
    parameters: tuple[Parameter, ...] = field(default=())

    @property
    def ruleset_files(self) -> list[Path]:
        return sorted(p for p in self.path.glob("*.y*ml") if p.name not in (MANIFEST, "pack.yml"))

    @property
    def scenario_files(self) -> list[Path]:
        return sorted((self.path / "samples").glob("*.y*ml"))

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "description": self.description, "keepwell": self.keepwell,
                "path": str(self.path), "rulesets": [f.name for f in self.ruleset_files],
                "samples": [f.name for f in self.scenario_files],
                "parameters": [{"name": p.name, "type": p.type, "default": p.default, "help": p.help} for p in self.parameters]}


def _load(path: Path) -> Pack:
    manifest = path / MANIFEST
    if not manifest.is_file():
        return Pack(path.name, path)
    doc = load_file(manifest) or {}
    problems = []
    params = []
    for name, spec in (doc.get("parameters") or {}).items():
        spec = spec or {}
        if spec.get("type") not in PARAM_TYPES:
            problems.append(Problem(f"parameters.{name}.type", f"must be one of {', '.join(PARAM_TYPES)}", str(manifest)))
            continue
        params.append(Parameter(name, spec["type"], spec.get("default"), spec.get("help", "")))
    if problems:
        raise InvalidDocument(f"pack manifest {manifest} is not valid", problems)
    return Pack(doc.get("name", path.name), path, str(doc.get("version", "0")), doc.get("description", ""),
                str(doc.get("keepwell", "")), tuple(params))


def find(name_or_path: str) -> Pack:
    p = Path(name_or_path)
    if not p.is_dir():
        p = rulesets_dir() / name_or_path
    if not p.is_dir():
        raise NotFound(f"no pack {name_or_path!r} (see `keepwell packs list`)")
    return _load(p)


def available() -> list[Pack]:
    return [_load(p) for p in sorted(rulesets_dir().iterdir()) if p.is_dir()]


def resolve_values(pack: Pack, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Parameter values as text: defaults, then overrides, each checked against its type."""
    overrides = dict(overrides or {})
    problems = [Problem(f"--set {k}", f"the pack has no parameter {k!r}") for k in overrides
                if k not in {p.name for p in pack.parameters}]
    values = {}
    for p in pack.parameters:
        raw = overrides.get(p.name, p.default)
        text = "" if raw is None else str(raw).lower() if isinstance(raw, bool) else str(raw)
        err = _type_error(p.type, text)
        if err:
            problems.append(Problem(f"--set {p.name}", f"{text!r}: {err}"))
        values[p.name] = text
    if problems:
        raise InvalidDocument(f"pack {pack.name}: bad parameter values", problems)
    return values


def _type_error(kind: str, text: str) -> str | None:
    if kind == "money":
        try:
            return "must not be negative" if to_cents(text) < 0 else None
        except MoneyError as exc:
            return str(exc)
    if kind == "integer":
        return None if re.fullmatch(r"-?\d+", text) else "not a whole number"
    if kind == "percent":
        try:
            return None if 0 <= to_cents(text) <= 10000 else "must be between 0 and 100"
        except MoneyError as exc:
            return str(exc)
    if kind == "boolean":
        return None if text in ("true", "false") else "must be true or false"
    return None


def render(pack: Pack, path: Path, values: dict[str, str]) -> object:
    """A ruleset file with its ${parameters} filled in, parsed."""
    text = path.read_text(encoding="utf-8")
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(values))
    if unknown:
        raise InvalidDocument(f"{path} uses undeclared parameters", [Problem(f"${{{u}}}", "not declared in pack.yaml", str(path)) for u in unknown])
    return parse_text(_PLACEHOLDER.sub(lambda m: values[m.group(1)], text), str(path))


def documents(pack: Pack, overrides: dict[str, str] | None = None) -> list[tuple[str, dict]]:
    values = resolve_values(pack, overrides)
    docs = [(str(f), render(pack, f, values)) for f in pack.ruleset_files]
    problems = [p for f, d in docs for p in validate_ruleset(d, f)]
    if problems:
        raise InvalidDocument(f"pack {pack.name} has invalid rulesets", problems)
    return docs


def install(app, pack: Pack, company: str, author: str = "pack", effective_from: date = date(1970, 1, 1),
            overrides: dict[str, str] | None = None) -> list[str]:
    return [app.publish(doc, author, effective_from, file=f, company=company).ref for f, doc in documents(pack, overrides)]


def test(app, pack: Pack, timezone: str = "UTC") -> list[Outcome]:
    """Each scenario runs in a fresh company of its own, with the pack installed (defaults, or
    the scenario's own `parameters`)."""
    outcomes = []
    documents(pack)  # fail fast, with every problem, before any scenario runs
    for scenario in pack.scenario_files:
        doc = load_file(scenario) or {}
        company = f"packtest-{pack.name}-{secrets.token_hex(4)}"
        app.add_company(company, f"Pack test {pack.name}", doc.get("timezone", timezone))
        install(app, pack, company, overrides={k: str(v) for k, v in (doc.get("parameters") or {}).items()})
        outcomes.append(run_scenario(app, scenario, company=company))
    return outcomes
