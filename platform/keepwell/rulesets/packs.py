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
from dataclasses import dataclass, field
from pathlib import Path

from ..infra.resources import rulesets_dir
from ..kernel.errors import InvalidDocument, NotFound, Problem
from ..kernel.money import MoneyError, to_cents
from .documents import content_hash, load_file, parse_text
from .key_order import ruleset_diff
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
    label: str = ""  # what the install form calls it; the name in words when the manifest gives none

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


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
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "keepwell": self.keepwell,
            "path": str(self.path),
            "rulesets": [f.name for f in self.ruleset_files],
            "samples": [f.name for f in self.scenario_files],
            "parameters": [
                {"name": p.name, "label": p.title, "type": p.type, "default": p.default, "help": p.help}
                for p in self.parameters
            ],
        }


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
            problems.append(
                Problem(f"parameters.{name}.type", f"must be one of {', '.join(PARAM_TYPES)}", str(manifest))
            )
            continue
        params.append(Parameter(name, spec["type"], spec.get("default"), spec.get("help", ""),
                                str(spec.get("label", ""))))
    if problems:
        raise InvalidDocument(f"pack manifest {manifest} is not valid", problems)
    return Pack(doc.get("name", path.name), path, str(doc.get("version", "0")), doc.get("description", ""),
                str(doc.get("keepwell", "")), tuple(params))


def find(name_or_path: str) -> Pack:
    """A pack by name (shipped), folder, or archive made by `build`."""
    p = Path(name_or_path)
    if p.is_file() and p.name.endswith(".tar.gz"):
        return _unpack(p)
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
            problems.append(Problem(f"--set {p.name}", f"{p.title} {err}"))
        values[p.name] = text
    if problems:
        raise InvalidDocument(f"pack {pack.name}: bad parameter values", problems)
    return values


def _type_error(kind: str, text: str) -> str | None:
    """What is wrong with a parameter's value, as the end of a sentence that starts with its label."""
    if kind == "money":
        try:
            return "must not be negative" if to_cents(text) < 0 else None
        except MoneyError:
            return "must be an amount like 250.00"
    if kind == "integer":
        return None if re.fullmatch(r"-?\d+", text) else "must be a whole number"
    if kind == "percent":
        try:
            return None if 0 <= to_cents(text) <= 10000 else "must be between 0 and 100"
        except MoneyError:
            return "must be a percentage between 0 and 100, like 10 or 12.5"
    if kind == "boolean":
        return None if text in ("true", "false") else "must be yes or no"
    return None


def render(pack: Pack, path: Path, values: dict[str, str], placed: dict[str, set[str]] | None = None) -> object:
    """A ruleset file with its ${parameters} filled in. The file is parsed first and values go
    into the parsed strings, so a value can never change the document's structure; a string
    that is exactly one placeholder takes the parameter's type (a whole number stays a number).
    `placed`, when given, learns which parameters went where (document path -> names)."""
    doc = parse_text(path.read_text(encoding="utf-8"), str(path))
    used: set[str] = set()
    types = {p.name: p.type for p in pack.parameters}

    def fill(node, at: str):
        if isinstance(node, dict):
            return {k: fill(v, f"{at}.{k}" if at else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v, f"{at}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, str) or "${" not in node:
            return node
        names = [m.group(1) for m in _PLACEHOLDER.finditer(node)]
        used.update(names)
        if placed is not None:
            placed.setdefault(at, set()).update(names)
        whole = _PLACEHOLDER.fullmatch(node)
        if whole and whole.group(1) in values:
            return _typed(types[whole.group(1)], values[whole.group(1)])
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), node)

    filled = fill(doc, "")
    unknown = sorted(used - set(values))
    if unknown:
        raise InvalidDocument(f"{path} uses undeclared parameters",
                              [Problem(f"${{{u}}}", "not declared in pack.yaml", str(path)) for u in unknown])
    return filled


def _typed(kind: str, text: str):
    if kind == "integer":
        return int(text)
    if kind == "boolean":
        return text == "true"
    return text


def documents(pack: Pack, overrides: dict[str, str] | None = None) -> list[tuple[str, dict]]:
    values = resolve_values(pack, overrides)
    docs, problems = [], []
    for f in pack.ruleset_files:
        placed: dict[str, set[str]] = {}
        doc = render(pack, f, values, placed)
        docs.append((str(f), doc))
        problems.extend(_on_parameter(p, placed, pack) for p in validate_ruleset(doc, str(f)))
    if problems:
        raise InvalidDocument(f"pack {pack.name} has invalid rulesets", problems)
    return docs


def _on_parameter(problem: Problem, placed: dict[str, set[str]], pack: Pack) -> Problem:
    """A problem where a parameter's value went is that parameter's (the install form shows it
    beside the parameter's field, the CLI names its --set); others stay with the file."""
    names = placed.get(problem.path, set())
    if len(names) != 1:
        return problem
    (name,) = names
    param = next(p for p in pack.parameters if p.name == name)
    own = problem.label and problem.message.startswith(problem.label + " ")
    phrase = problem.message[len(problem.label) + 1:] if own else f"is not right here: {problem.message}"
    return Problem(f"--set {name}", f"{param.title} {phrase}", problem.file, param.title)


def changes(pack: Pack, docs: list[tuple[str, dict]], current: dict[str, tuple[str, int, dict]]) -> list[dict]:
    """What installing `docs` would publish against what is published now (`current`: ruleset
    id -> (ref, version, content) of its newest version): new, unchanged, or a diff."""

    rows = []
    for f, doc in docs:
        key = doc["metadata"]["id"]
        found = current.get(key)
        if found is None:
            rows.append({"file": f, "id": key, "change": "new", "diff": ""})
            continue
        ref, version, content = found
        if content_hash(content) == content_hash(doc):
            rows.append({"file": f, "id": key, "change": "unchanged", "current": ref, "diff": ""})
            continue
        diff = ruleset_diff(content, doc, ref, f"{key}@{version + 1} ({pack.name} {pack.version})")
        rows.append({"file": f, "id": key, "change": "changed", "current": ref, "diff": diff})
    return rows


def build(pack: Pack, out_dir: Path) -> Path:
    """One distributable archive (<name>-<version>.tar.gz) of a pack whose rulesets validate."""
    import tarfile

    documents(pack)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{pack.name}-{pack.version}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for f in sorted(pack.path.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                tar.add(f, arcname=f"{pack.name}/{f.relative_to(pack.path)}")
    return target


def _unpack(archive: Path) -> Pack:
    import tarfile
    import tempfile

    dest = Path(tempfile.mkdtemp(prefix="keepwell-pack-"))
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")  # the "data" filter refuses absolute paths and links out
    folders = [p for p in dest.iterdir() if p.is_dir()]
    if len(folders) != 1:
        raise InvalidDocument(
            f"{archive} is not a pack archive", [Problem("(archive)", "expected one top-level folder", str(archive))]
        )
    return _load(folders[0])
