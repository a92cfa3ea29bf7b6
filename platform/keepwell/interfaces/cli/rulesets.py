"""Rulesets and template packs: validate, publish, inspect, compare, roll back, simulate, install."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from ...kernel.errors import InvalidDocument, Problem
from ...usecases import packs
from ...usecases import rulesets as uc
from ...usecases.rulesets import load_file, parse_text, to_yaml
from ...usecases.simulation import CLI_LIMITS, simulate
from .common import Obj, emit, handled, json_option, parse_date, parse_settings

AT_ONCE = date(1970, 1, 1)  # the default effective-from: at once, and for back-dated events


def _author(author: str | None) -> str:
    return author or getpass.getuser()


def _read_docs(files: tuple[str, ...]) -> list[tuple[str, object]]:
    return [("<stdin>", parse_text(sys.stdin.read(), "<stdin>")) if f == "-" else (f, load_file(f)) for f in files]


@click.group("rulesets")
def rulesets() -> None:
    """Validate, publish and inspect versioned rulesets."""


@rulesets.command("validate")
@click.argument("files", nargs=-1, required=True)
@json_option
def rulesets_validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check ruleset files; print one line per error (file: path: reason) and exit 1 if any."""
    problems: list[Problem] = []
    for f in files:
        try:
            found = uc.validate([(f, load_file(f))])
        except InvalidDocument as exc:
            found = exc.problems
        problems.extend(found)
        if not found and not as_json:
            click.echo(f"{f}: ok", err=True)
    emit([{"file": p.file, "path": p.path, "message": p.message} for p in problems], as_json,
         lambda _rows: [click.echo(str(p)) for p in problems])
    sys.exit(1 if problems else 0)


@rulesets.command("publish")
@click.argument("files", nargs=-1, required=True)
@click.option("--effective-from", callback=parse_date, default=None,
              help="Date the version takes effect (default: 1970-01-01, i.e. at once and for back-dated events).")
@click.option("--author", default=None, help="Who publishes (default: $USER).")
@click.pass_obj
@handled
def rulesets_publish(obj: Obj, files: tuple[str, ...], effective_from: date | None, author: str | None) -> None:
    """Publish each file as a new immutable version, all or none; prints id@version per file."""
    for published in uc.publish_all(
        obj.app, obj.company, _read_docs(files), _author(author), effective_from or AT_ONCE
    ):
        click.echo(published.ref + ("" if published.created else "  (unchanged)"))


@rulesets.command("list")
@json_option
@click.pass_obj
@handled
def rulesets_list(obj: Obj, as_json: bool) -> None:
    def human(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            click.echo(f"{r['id']:<28} {r['kind']:<22} {r['latest'] or '(draft only)':<32} {r['name']}")

    emit(uc.list_rulesets(obj.app, obj.company), as_json, human)


@rulesets.command("show")
@click.argument("ref")
@json_option
@click.option("--versions", "history", is_flag=True, help="List every version instead of the content.")
@click.pass_obj
@handled
def rulesets_show(obj: Obj, ref: str, as_json: bool, history: bool) -> None:
    """Show a version (ID for the newest, ID@N for one) or, with --versions, the history."""
    if history:
        rows = uc.versions_of(obj.app, obj.company, ref.split("@")[0])
        emit(rows, as_json, lambda rows: [click.echo(
            f"{r['ref']:<28} {r['effective_from']}  {r['author']:<16} {r['content_hash'][:12]} {r['note'] or ''}")
            for r in rows])
        return
    data = uc.show(obj.app, obj.company, ref)
    emit(data, as_json, lambda d: click.echo(
        f"# {d['ref']}  effective {d['effective_from']}  by {d['author']}  sha256 {d['content_hash'][:12]}\n"
        + to_yaml(d["content"])))


@rulesets.command("diff")
@click.argument("a")
@click.argument("b")
@json_option
@click.pass_obj
@handled
def rulesets_diff(obj: Obj, a: str, b: str, as_json: bool) -> None:
    """Unified diff between two versions, e.g. `vip-customer@1 vip-customer@2`."""
    if "@" not in b and "@" in a and b.isdigit():
        b = f"{a.split('@')[0]}@{b}"
    text = uc.diff(obj.app, obj.company, a, b)
    emit({"from": a, "to": b, "changed": bool(text), "diff": text}, as_json,
         lambda d: click.echo(d["diff"] or "(no differences)\n", nl=False))


@rulesets.command("simulate")
@click.argument("files", nargs=-1)
@click.option("--pack", default=None, help="Simulate a template pack's rulesets (with --set values) instead of files.")
@click.option("--set", "settings", multiple=True, metavar="PARAM=VALUE", help="A pack parameter value.")
@click.option("--events", "events_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A sample stream (JSON lines) instead of the recorded events.")
@click.option("--from", "start", callback=parse_date, required=True, help="First day of the range.")
@click.option("--to", "end", callback=parse_date, required=True, help="Last day of the range.")
@json_option
@click.pass_obj
@handled
def rulesets_simulate(obj: Obj, files: tuple[str, ...], pack: str | None, settings: tuple[str, ...],
                      events_file: str | None, start: date, end: date, as_json: bool) -> None:
    """What would change if FILES (drafts), or a pack with other parameters, had been in force
    from --from: points, allowance, revenue and points liability, per member and in total, over
    the recorded events (or a sample stream). Writes nothing to the ledgers."""
    if bool(files) == bool(pack):
        raise InvalidDocument.field("FILES", "give draft FILES or --pack NAME (not both)",
                                    "give draft FILES or --pack NAME (not both)")
    if pack:
        drafts = [doc for _f, doc in packs.documents(packs.find(pack), parse_settings(settings))]
    else:
        drafts = [load_file(f) for f in files]  # type: ignore[misc]
    stream = None
    if events_file:
        with open(events_file, encoding="utf-8") as fh:
            try:
                stream = [json.loads(line) for line in fh if line.strip()]
            except ValueError as exc:
                raise InvalidDocument.field(events_file, f"not JSON lines: {exc}",
                                            "the event file could not be read") from None
    report = simulate(obj.app, obj.company, drafts, start, end, stream, CLI_LIMITS)

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{r['draft']} over {r['from']} .. {r['to']}: {r['events']} {r['source']} events, "
                   f"{r['members_changed']} member(s) change")
        for m in r["members"]:
            click.echo(f"  {m['name']:<24} points {m['points']['change']:+d}  allowance {m['allowance']['change']}  "
                       f"revenue {m['revenue']['change']}  liability {m['points_liability']['change']}")
        t = r["total"]
        click.echo(f"  total: points {t['points']:+d}, allowance {t['allowance']}, revenue {t['revenue']}, "
                   f"liability {t['points_liability']}")

    emit(report, as_json, human)


@rulesets.command("rollback")
@click.argument("ruleset_id")
@click.option("--to", "to_version", type=int, required=True, help="The version whose content is published again.")
@click.option("--effective-from", callback=parse_date, default=None)
@click.option("--author", default=None)
@click.pass_obj
@handled
def rulesets_rollback(obj: Obj, ruleset_id: str, to_version: int, effective_from: date | None,
                      author: str | None) -> None:
    """Publish an older version's content as a new version."""
    click.echo(uc.rollback(obj.app, obj.company, ruleset_id, to_version, _author(author), effective_from).ref)


@rulesets.command("draft")
@click.argument("file")
@click.option("--author", default=None)
@click.pass_obj
@handled
def rulesets_draft(obj: Obj, file: str, author: str | None) -> None:
    """Save a draft (it may still have errors, which are listed)."""
    doc = load_file(file)
    if not isinstance(doc, dict):
        raise InvalidDocument("a draft needs kind and metadata.id", [Problem("(document)", "not a mapping", file)])
    problems = uc.save_draft(obj.app, obj.company, doc, _author(author))
    for p in problems:
        click.echo(str(p))
    click.echo(f"draft saved: {doc['metadata']['id']} ({len(problems)} problem(s))", err=True)


@rulesets.command("publish-draft")
@click.argument("ruleset_id")
@click.option("--effective-from", callback=parse_date, default=None)
@click.option("--author", default=None)
@click.pass_obj
@handled
def rulesets_publish_draft(obj: Obj, ruleset_id: str, effective_from: date | None, author: str | None) -> None:
    click.echo(uc.publish_draft(obj.app, obj.company, ruleset_id, _author(author), effective_from or AT_ONCE).ref)


@click.group("packs")
def packs_group() -> None:
    """Industry template packs."""


@packs_group.command("list")
@json_option
@handled
def packs_list(as_json: bool) -> None:
    """The template packs shipped with Keepwell."""
    rows = [p.to_dict() for p in packs.available()]
    emit(rows, as_json, lambda rows: [click.echo(
        f"{r['name']:<14} {r['version']:<8} {len(r['rulesets'])} rulesets, {len(r['samples'])} samples  "
        f"{r['description']}") for r in rows])


@packs_group.command("show")
@click.argument("pack")
@json_option
@handled
def packs_show(pack: str, as_json: bool) -> None:
    """A pack's manifest: version, description, parameters with defaults and help."""

    def human(d: dict[str, Any]) -> None:
        click.echo(f"{d['name']} {d['version']}: {d['description']}")
        click.echo(f"  rulesets: {', '.join(d['rulesets'])}")
        click.echo(f"  samples:  {', '.join(d['samples'])}")
        for p in d["parameters"]:
            click.echo(f"  --set {p['name']}=<{p['type']}>  (default {p['default']})  {p['help']}")

    emit(packs.find(pack).to_dict(), as_json, human)


@packs_group.command("test")
@click.argument("pack")
@click.pass_obj
@handled
def packs_test(obj: Obj, pack: str) -> None:
    """Run a pack's sample scenarios through the real engine in fresh test companies."""
    from ...usecases import companies

    companies.init(obj.app, obj.company, obj.company.title())
    outcomes = packs.test(obj.app, packs.find(pack))
    failed = 0
    for o in outcomes:
        click.echo(f"{'ok  ' if o.ok else 'FAIL'} {o.scenario} ({o.steps} steps)")
        for f in o.failures:
            click.echo(f"     {f}")
        failed += not o.ok
    sys.exit(1 if failed or not outcomes else 0)


@packs_group.command("build")
@click.argument("pack")
@click.option("--out", "out_dir", default="dist", show_default=True, help="Folder for the archive.")
@handled
def packs_build(pack: str, out_dir: str) -> None:
    """Validate a pack and write it as one archive (<name>-<version>.tar.gz); prints its path."""
    click.echo(packs.build(packs.find(pack), Path(out_dir)))


@packs_group.command("install")
@click.argument("pack")
@click.option("--set", "settings", multiple=True, metavar="PARAM=VALUE", help="A parameter value (see `packs show`).")
@click.option(
    "--dry-run", is_flag=True, help="Show what would be published (new, unchanged, or the diff) and publish nothing."
)
@json_option
@click.pass_obj
@handled
def packs_install(obj: Obj, pack: str, settings: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Publish a pack's rulesets into the company, with its parameters filled in. Existing
    memberships stay pinned to the plan version they enrolled on."""
    overrides = parse_settings(settings)
    found = packs.find(pack)
    if dry_run:
        rows = packs.preview(obj.app, obj.company, found, overrides)
        emit(rows, as_json, lambda rows: [click.echo(f"{r['id']}: {r['change']}\n{r['diff']}".rstrip()) for r in rows])
        return
    refs = packs.install(obj.app, obj.company, found, overrides=overrides)
    emit(refs, as_json, lambda refs: [click.echo(r) for r in refs])


COMMANDS = [rulesets, packs_group]
