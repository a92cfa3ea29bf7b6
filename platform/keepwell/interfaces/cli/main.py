"""The `keepwell` command: a composition root. Its commands, flags and JSON keys are a public
contract that scripts rely on: extend them, never rename them.

Each command parses its options, calls one use case and prints the answer (text, or JSON with
--json). The commands live by subject: `setup` (database, companies, users, keys, serving),
`rulesets` (rulesets and packs), `members` (customers, memberships, points), `events` (events,
due work, audit), `operations` (workers, jobs, the outbox, templates).
"""

from __future__ import annotations

from typing import Any

import click

from ...infra.logs import mask_card_numbers
from .common import Obj


@click.group()
@click.option("--company", envvar="KEEPWELL_COMPANY", default=None,
              help="Company slug (default: KEEPWELL_COMPANY or 'default').")
@click.version_option(package_name="keepwell")
@click.pass_context
def main(ctx: Any, company: str | None) -> None:
    """Keepwell: memberships and rewards for home-service contractors, configured by rulesets."""
    mask_card_numbers()
    ctx.obj = Obj(company)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    from . import events, members, operations, reports, rewards, rulesets, setup

    members.points.add_command(rewards.points_liability_command())
    members.points.add_command(rewards.points_adjust_command())
    for module in (setup, rulesets, members, rewards, events, operations, reports):
        for command in module.COMMANDS:
            main.add_command(command)
    from . import visits

    for command in visits.COMMANDS:
        main.add_command(command)


_register()
