"""Rewards: the catalog, redemptions and their fulfilment, referral codes, the points economy."""

from __future__ import annotations

import getpass
from datetime import date
from decimal import Decimal
from typing import Any

import click

from ...usecases import rewards
from .common import Obj, emit, handled, json_option, parse_date


@click.group("rewards")
def rewards_group() -> None:
    """The reward catalog and redemptions."""


@rewards_group.command("list")
@click.option("--on", "on", callback=parse_date, default=None, help="The catalog in force on this day (today).")
@json_option
@click.pass_obj
@handled
def rewards_list(obj: Obj, on: date | None, as_json: bool) -> None:
    """The rewards members can redeem, with their cost and the stock left."""

    def human(rows: list[dict[str, Any]]) -> None:
        if not rows:
            click.echo("no reward catalog is published")
        for r in rows:
            stock = f", {r['in_stock']} in stock" if "in_stock" in r else ""
            when = "" if r["available"] else " (not available today)"
            click.echo(f"{r['id']:<24} {r['points']:>7} points  {r['name']} [{r['type_name']}{stock}]{when}")

    emit(rewards.catalog_list(obj.app, obj.company, on), as_json, human)


def _print_redemption(d: dict[str, Any]) -> None:
    click.echo(f"{d['redemption']}: {d.get('reward_name', d.get('reward'))} — {d['status']}")
    if "points" in d:
        click.echo(f"  {d['points']} points from " + ", ".join(
            f"lot {lot['lot']} ({lot['points']}, expires {lot['expires_on'] or 'never'})" for lot in d["lots"]))
    if "points_returned" in d:
        click.echo(f"  {d['points_returned']} points back to " + ", ".join(
            f"lot {lot['lot']} ({lot['points']})" for lot in d["lots"]))


@rewards_group.command("redeem")
@click.argument("customer")
@click.argument("reward")
@click.option("--quantity", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--on", "on", callback=parse_date, default=None, help="Day of the redemption (today).")
@click.option("--membership", default=None, help="The membership a free service or a credit goes to.")
@click.option("--ship-to", "ship_to", default=None, help="Where shipped merchandise goes.")
@click.option("--key", default=None, help="Idempotency key (a new one by default).")
@json_option
@click.pass_obj
@handled
def rewards_redeem(obj: Obj, customer: str, reward: str, quantity: int, on: date | None, membership: str | None,
                   ship_to: str | None, key: str | None, as_json: bool) -> None:
    """Redeem REWARD for CUSTOMER: points from the lots in the program's order."""
    emit(rewards.redeem(obj.app, obj.company, customer, reward, quantity, on, membership, ship_to, key), as_json,
         _print_redemption)


def _status_command(name: str, status: str, help_: str) -> click.Command:
    @click.argument("redemption")
    @click.option("--tracking", default=None, help="The parcel's tracking number.")
    @click.option("--reason", default=None)
    @click.option("--on", "on", callback=parse_date, default=None, help="Day of the change (today).")
    @json_option
    @click.pass_obj
    @handled
    def command(obj: Obj, redemption: str, tracking: str | None, reason: str | None, on: date | None,
                as_json: bool) -> None:
        emit(rewards.change_redemption(obj.app, obj.company, redemption, status, tracking, reason, on), as_json,
             _print_redemption)

    command.__doc__ = help_
    return rewards_group.command(name)(command)


_status_command("fulfil", "next", "Move REDEMPTION one step on: pending to fulfilled, ordered to shipped, "
                "shipped to delivered.")
_status_command("ship", "shipped", "Mark REDEMPTION (merchandise) shipped.")
_status_command("deliver", "delivered", "Mark REDEMPTION (merchandise) delivered.")
_status_command("cancel", "cancelled", "Cancel REDEMPTION: points back to the same lots, the stock back.")


@rewards_group.command("redemptions")
@click.option("--status", type=click.Choice(["open", "pending", "ordered", "shipped", "delivered", "fulfilled",
                                             "cancelled"]), default=None, help="open: every one still to fulfil.")
@click.option("--customer", default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@json_option
@click.pass_obj
@handled
def rewards_redemptions(obj: Obj, status: str | None, customer: str | None, limit: int, offset: int,
                        as_json: bool) -> None:
    """Redemptions, newest first (the fulfilment queue with --status open)."""

    def human(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            click.echo(f"{r['redemption']}  {r['redeemed_on']}  {r['customer_name'] or r['customer']:<24} "
                       f"{r['quantity']} x {r['reward_name']}  {r['status']}")

    emit(rewards.list_redemptions(obj.app, obj.company, status, customer, limit, offset), as_json, human)


@click.group("referrals")
def referrals_group() -> None:
    """Referral codes and referrals."""


@referrals_group.command("code")
@click.argument("customer")
@click.pass_obj
@handled
def referrals_code(obj: Obj, customer: str) -> None:
    """Print CUSTOMER's referral code (made on first ask)."""
    click.echo(rewards.referral_code(obj.app, obj.company, customer))


@referrals_group.command("list")
@click.argument("customer")
@json_option
@click.pass_obj
@handled
def referrals_list(obj: Obj, customer: str, as_json: bool) -> None:
    """Who joined with CUSTOMER's code, and where each referral stands."""

    def human(d: dict[str, Any]) -> None:
        for r in d["referrals"]:
            click.echo(f"{r['referee_name'] or r['referee']:<24} {r['status']:<10} referred {r['referred_on']}"
                       + (f", rewarded {r['rewarded_on']}" if r["rewarded_on"] else ""))

    emit(rewards.referrals_of(obj.app, obj.company, customer), as_json, human)


def points_adjust_command() -> click.Command:
    @click.command("adjust")
    @click.argument("customer")
    @click.argument("amount", type=int)
    @click.option("--reason", required=True, help="Why (shown on the customer's points history).")
    @click.option("--by", default=None, help="Who makes it (default: your login name).")
    @click.option("--on", "on", callback=parse_date, default=None, help="Day of the adjustment (today).")
    @click.option("--key", default=None, help="Idempotency key (a new one by default).")
    @json_option
    @click.pass_obj
    @handled
    def adjust(obj: Obj, customer: str, amount: int, reason: str, by: str | None, on: date | None, key: str | None,
               as_json: bool) -> None:
        """Add AMOUNT points to CUSTOMER (negative to deduct: `-- -50`), with a reason; names who made it."""
        who = by or f"{getpass.getuser()} (command line)"
        emit(rewards.adjust_points(obj.app, obj.company, customer, amount, reason, who, on, key), as_json,
             lambda d: click.echo(f"{d['adjusted']:+d} points ({d['reason']}, by {d['by']}): balance {d['balance']}"))

    return adjust


def points_liability_command() -> click.Command:
    @click.command("liability")
    @click.option("--from", "start", callback=parse_date, default=None, help="First day (12 months back).")
    @click.option("--to", "end", callback=parse_date, default=None, help="Last day (today).")
    @json_option
    @click.pass_obj
    @handled
    def liability(obj: Obj, start: date | None, end: date | None, as_json: bool) -> None:
        """Points outstanding and their liability; earned, redeemed, expired per month; breakage."""

        def human(d: dict[str, Any]) -> None:
            click.echo(f"{d['outstanding_points']} points outstanding ({d['pending_points']} pending) held by "
                       f"{d['customers_with_points']} customers; liability {d['liability'] or 'n/a (no point value)'}")
            for m in d["months"]:
                click.echo(f"  {m['month']}: earned {m['earned']}, redeemed {m['redeemed']}, expired {m['expired']}")
            if d["breakage_rate"]:
                click.echo(f"  breakage rate {Decimal(d['breakage_rate']) * 100:.1f}%")

        emit(rewards.liability(obj.app, obj.company, start, end), as_json, human)

    return liability


COMMANDS = [rewards_group, referrals_group]
