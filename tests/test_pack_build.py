"""A pack travels as one archive; installing a newer version shows what it would change first."""

from __future__ import annotations

import json

from keepwell.usecases import packs


def test_build_an_archive_and_install_from_it(cli, tmp_path):
    path = cli.out("packs", "build", "plumbing", "--out", str(tmp_path / "dist"))
    assert path.endswith("plumbing-" + packs.find("plumbing").version + ".tar.gz")
    refs = cli.json("packs", "install", path)
    assert len(refs) == 3 and all(r.endswith("@1") for r in refs)
    res = cli("packs", "test", path)
    assert res.stdout and all(line.startswith("ok") for line in res.stdout.splitlines())


def test_dry_run_shows_the_diff_and_publishes_nothing(cli):
    pack = packs.find("plumbing")
    money = next(p for p in pack.parameters if p.type == "money")
    cli("packs", "install", "plumbing")
    rows = cli.json("packs", "install", "plumbing", "--dry-run")
    assert {r["change"] for r in rows} == {"unchanged"}
    new_value = "987.65"
    rows = cli.json("packs", "install", "plumbing", "--dry-run", "--set", f"{money.name}={new_value}")
    changed = [r for r in rows if r["change"] == "changed"]
    assert len(changed) == 1 and '+  ' in changed[0]["diff"] and new_value in changed[0]["diff"]
    # Nothing was published by the dry run.
    listed = cli.json("rulesets", "list")
    assert all(r["latest"].endswith("@1") for r in listed)
    # Installing it publishes @2 of that one ruleset only.
    refs = cli.json("packs", "install", "plumbing", "--set", f"{money.name}={new_value}")
    assert sorted(r.split("@")[1] for r in refs) == ["1", "1", "2"]
    shown = cli.json("rulesets", "show", changed[0]["id"])
    assert new_value in json.dumps(shown["content"])


def test_a_broken_archive_is_refused(cli, tmp_path):
    bad = tmp_path / "x.tar.gz"
    import tarfile

    with tarfile.open(bad, "w:gz") as tar:
        for name in ("a", "b"):
            d = tmp_path / name
            d.mkdir()
            (d / "pack.yaml").write_text(f"name: {name}\n")
            tar.add(d, arcname=name)
    res = cli("packs", "install", str(bad), expect=1)
    assert "not a pack archive" in res.stderr
