"""Events through `keepwell events post`: duplicates, malformed input, platform-only types,
declined purchases, tenants kept apart, and the audit after a mixed run."""

from __future__ import annotations

import json
import textwrap

import pytest
import sqlalchemy as sa

from support import Cli, event

PLAN = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: Plan
    metadata: {id: care-club, name: Care Club}
    spec:
      allowance:
        amount: "500.00"
        period: yearly
        overdraft: {limit: "100.00"}
      included_services:
        - {code: AC_TUNE, quantity: 1}
      discount_percent: "10"
    """)

POINTS = textwrap.dedent("""\
    apiVersion: keepwell/v1
    kind: EarningRules
    metadata: {id: care-points, name: Care points}
    spec:
      expiry: {after_months: 12}
      rules:
        - id: spend
          when: {event: purchase}
          earn: {points: 1, per: "1.00", of: data.amount}
    """)


@pytest.fixture
def member(cli, tmp_path):
    """A customer on the Care Club plan since 2020-01-01, with points rules published."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    pts = tmp_path / "points.yaml"
    pts.write_text(POINTS)
    assert cli.out("rulesets", "publish", str(plan), str(pts)).splitlines() == ["care-club@1", "care-points@1"]
    customer = cli.out("customers", "add", "--name", "Grace Hopper")
    membership = cli.out("enroll", customer, "care-club", "--on", "2020-01-01")
    return customer, membership


def entry_count(cli, membership: str) -> int:
    st = cli.json("statement", membership, "--from", "2019-01-01", "--to", "2030-12-31")
    return sum(len(a["entries"]) for a in st["accounts"])


def snapshot(cli, customer: str, membership: str) -> tuple:
    """Everything a user can see change: allowance, services, points and the statement."""
    shown = cli.json("membership", "show", membership)
    pts = cli.json("points", "show", customer)
    return shown["allowance"], shown["services"], pts["balance"], pts["lots"], entry_count(cli, membership)


def post_raw(cli, text: str, expect: int | None = None) -> tuple[int, list[dict]]:
    res = cli("events", "post", "-", input=text, expect=expect)
    return res.exit_code, [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


# --- duplicates -----------------------------------------------------------------------------

def test_repeated_id_returns_first_result_and_changes_nothing(cli, member):
    customer, m = member
    buy = event("pos-1", "purchase", customer, "2020-03-02", amount="120.50", pay_with="membership")
    [first] = cli.post(buy)
    assert (first["status"], first["duplicate"], first["balance"]) == ("approved", False, "379.50")
    assert first["points"] == {"earned": 120, "balance": 120}
    before = snapshot(cli, customer, m)
    assert before[0]["balance"] == "379.50" and before[2] == 120

    [again] = cli.post(buy)
    assert again["duplicate"] is True
    assert "warning" not in again
    assert {k: v for k, v in again.items() if k != "duplicate"} == {k: v for k, v in first.items() if k != "duplicate"}
    assert snapshot(cli, customer, m) == before

    # Twice in one file is the same as twice in two files.
    results = cli.post(buy, buy)
    assert [r["duplicate"] for r in results] == [True, True]
    assert snapshot(cli, customer, m) == before


def test_same_id_with_different_content_keeps_first_result_with_warning(cli, member):
    customer, m = member
    [first] = cli.post(event("pos-7", "purchase", customer, "2020-03-02", amount="50.00", pay_with="membership"))
    before = snapshot(cli, customer, m)
    [other] = cli.post(event("pos-7", "purchase", customer, "2020-03-03", amount="400.00", pay_with="membership"))
    assert other["duplicate"] is True
    assert "different content" in other["warning"]
    assert (other["status"], other["charged"], other["balance"], other["local_date"]) == ("approved", "50.00", "450.00", "2020-03-02")
    assert other["entries"] == first["entries"]
    assert snapshot(cli, customer, m) == before
    assert before[0]["balance"] == "450.00"


# --- malformed events -----------------------------------------------------------------------

def _malformed(customer: str) -> list[tuple[str, str, str, str]]:
    """(name, line, path the error names, words the message contains)."""
    good = event("bad-1", "purchase", customer, "2020-03-02", amount="10.00", pay_with="membership")

    def variant(**changes) -> str:
        e = json.loads(json.dumps(good))
        for k, v in changes.items():
            if k == "data":
                e["data"] = v
            else:
                e[k] = v
        return json.dumps(e)

    return [
        ("no_utc_offset", variant(occurred_at="2020-03-02T10:00:00"), "occurred_at", "with its UTC offset"),
        ("amount_is_number", variant(data={"amount": 10.0, "pay_with": "membership"}), "data.amount",
         'Amount must be an amount written as text, like "250.00"'),
        ("unknown_type", variant(type="refund"), "type", "refund"),
        ("missing_amount", variant(data={"pay_with": "membership"}), "data.amount", "Amount is required"),
        ("extra_data_field", variant(data={"amount": "10.00", "pay_with": "membership", "tip": "2.00"}), "data.tip",
         "has no setting “tip”"),
    ]


@pytest.mark.parametrize("case", ["no_utc_offset", "amount_is_number", "unknown_type", "missing_amount", "extra_data_field"])
def test_malformed_event_is_rejected_with_its_path_and_changes_nothing(cli, member, case):
    customer, m = member
    before = snapshot(cli, customer, m)
    [(name, line, path, words)] = [c for c in _malformed(customer) if c[0] == case]
    code, [r] = post_raw(cli, line + "\n")
    assert code == 1
    assert r["status"] == "rejected"
    assert r["event"] == "bad-1" and r["line"] == 1
    assert r["code"] == "invalid"
    assert any(e["path"] == path and words in e["message"] for e in r["errors"]), r["errors"]
    assert snapshot(cli, customer, m) == before
    # Nothing was stored under the id either: the corrected event goes through as new.
    [ok] = cli.post(event("bad-1", "purchase", customer, "2020-03-02", amount="10.00", pay_with="membership"))
    assert (ok["status"], ok["duplicate"], ok["balance"]) == ("approved", False, "490.00")


def test_line_that_is_not_json_is_rejected(cli, member):
    customer, m = member
    before = snapshot(cli, customer, m)
    code, [r] = post_raw(cli, "this is not json\n")
    assert code == 1
    assert r["status"] == "rejected" and r["line"] == 1
    assert r["errors"][0]["path"] == "(line)"
    assert "not JSON" in r["errors"][0]["message"]
    assert snapshot(cli, customer, m) == before


def test_event_that_is_not_an_object_is_rejected(cli, member):
    customer, m = member
    before = snapshot(cli, customer, m)
    code, [r] = post_raw(cli, '["purchase", "10.00"]\n')
    assert code == 1
    assert r["status"] == "rejected"
    assert r["errors"][0]["path"] == "(event)"
    assert snapshot(cli, customer, m) == before


def test_mixed_file_processes_good_lines_and_rejects_bad_ones(cli, member, tmp_path):
    customer, m = member
    lines = [
        json.dumps(event("mix-1", "purchase", customer, "2020-03-01", amount="100.00", pay_with="membership")),
        "{not json",
        json.dumps(event("mix-2", "purchase", customer, "2020-03-02", amount=25, pay_with="membership")),
        "",
        json.dumps(event("mix-3", "service_completed", customer, "2020-03-03", service_code="AC_TUNE")),
        json.dumps(event("mix-4", "purchase", customer, "2020-03-04T10:00:00", amount="1.00")),
        json.dumps(event("mix-5", "purchase", customer, "2020-03-05", amount="40.00", pay_with="membership")),
    ]
    f = tmp_path / "events.jsonl"
    f.write_text("\n".join(lines) + "\n")
    res = cli("events", "post", str(f), expect=1)
    results = [json.loads(x) for x in res.stdout.splitlines()]
    assert [(r.get("event"), r["status"], r.get("line")) for r in results] == [
        ("mix-1", "approved", None),
        (None, "rejected", 2),
        ("mix-2", "rejected", 3),
        ("mix-3", "processed", None),
        ("mix-4", "rejected", 6),
        ("mix-5", "approved", None),
    ]
    assert results[3]["covered"] is True
    shown = cli.json("membership", "show", m)
    assert shown["allowance"]["balance"] == "360.00"
    assert shown["services"][0]["left"] == 0
    assert cli.json("points", "show", customer)["balance"] == 140
    # The rejected ids are free: only the good events were stored.
    [again] = cli.post(event("mix-2", "purchase", customer, "2020-03-02", amount="25.00", pay_with="membership"))
    assert (again["duplicate"], again["balance"]) == (False, "335.00")
    [dup] = cli.post(event("mix-5", "purchase", customer, "2020-03-05", amount="40.00", pay_with="membership"))
    assert dup["duplicate"] is True


def test_missing_events_file_is_a_clear_error(cli, member, tmp_path):
    res = cli("events", "post", str(tmp_path / "nope.jsonl"), expect=1)
    assert res.stderr.startswith("error: cannot read") and "nope.jsonl" in res.stderr
    assert "Traceback" not in res.output


@pytest.mark.parametrize("kind,data", [
    ("period_ended", {"membership": "MEMBERSHIP"}),
    ("renewed", {"membership": "MEMBERSHIP"}),
    ("expired", {"membership": "MEMBERSHIP"}),
    ("points_expired", {"through": "2020-12-31"}),
])
def test_platform_only_types_are_refused(cli, member, kind, data):
    customer, m = member
    before = snapshot(cli, customer, m)
    data = {k: (m if v == "MEMBERSHIP" else v) for k, v in data.items()}
    [r] = cli.post(event(f"fake-{kind}", kind, customer, "2020-12-31", **data), expect=1)
    assert r["status"] == "rejected"
    [err] = r["errors"]
    assert err["path"] == "type" and kind in err["message"] and "run-due" in err["message"]
    shown = cli.json("membership", "show", m)
    assert (shown["status"], shown["period"]["index"], shown["expires_on"]) == ("active", 0, "2020-12-31")
    assert snapshot(cli, customer, m) == before


@pytest.mark.parametrize("prefix", ["period_ended", "renewed", "expired", "points_expired"])
def test_platform_event_ids_are_refused(cli, member, prefix):
    """An outside event must not take the key of a platform event: the period end it names
    would then never happen (run-due looped forever on it)."""
    customer, m = member
    key = f"{prefix}:{m}:0" if prefix != "points_expired" else f"{prefix}:{customer}:2021-01-31"
    [r] = cli.post(event(key, "purchase", customer, "2020-02-01", amount="10.00", pay_with="membership"), expect=1)
    assert r["status"] == "rejected"
    [err] = r["errors"]
    assert err["path"] == "id" and "reserved" in err["message"]
    assert cli.json("run-due", "--as-of", "2021-01-02")["periods_closed"] == 1
    shown = cli.json("membership", "show", m)
    assert (shown["period"]["index"], shown["allowance"]["balance"]) == (1, "500.00")


def test_unknown_customer_is_refused(cli, member):
    customer, m = member
    before = snapshot(cli, customer, m)
    [r] = cli.post(event("ghost-1", "purchase", "cus_nobody", "2020-03-02", amount="10.00"), expect=1)
    assert r["status"] == "rejected"
    assert r["code"] == "not_found"
    assert "no customer" in r["message"] and "cus_nobody" in r["message"]
    assert snapshot(cli, customer, m) == before


def test_enrolment_key_is_an_event_id_too(cli, member):
    """`enroll` is idempotent by its key; a key first used by a different event must not hand
    back that event's membership (it printed another customer's membership id, or crashed)."""
    customer, m = member
    assert cli.out("enroll", customer, "care-club", "--on", "2020-01-01") == m  # same call: same membership
    ann = cli.out("customers", "add", "--name", "Ann Other")
    res = cli("enroll", ann, "care-club", "--on", "2020-01-01", "--key", f"enroll:{customer}:care-club:2020-01-01", expect=1)
    assert "already used" in res.stderr and res.stdout == ""
    bob = cli.out("customers", "add", "--name", "Bob Other")
    cli.post(event(f"enroll:{bob}:care-club:2020-02-01", "referral", bob, "2020-02-01", referred_name="Cy"))
    res = cli("enroll", bob, "care-club", "--on", "2020-02-01", expect=1)
    assert "already used" in res.stderr and "Traceback" not in res.output
    # With keys of their own both enrol, each on a membership of their own.
    m_ann = cli.out("enroll", ann, "care-club", "--on", "2020-01-01", "--key", "ann-joins")
    m_bob = cli.out("enroll", bob, "care-club", "--on", "2020-02-01", "--key", "bob-joins")
    assert len({m, m_ann, m_bob}) == 3
    assert cli.json("membership", "show", m_ann)["customer"]["name"] == "Ann Other"
    assert cli.json("membership", "show", m_bob)["customer"]["name"] == "Bob Other"


# --- declined -------------------------------------------------------------------------------

def test_declined_purchase_is_stored_and_stays_declined(cli, member):
    customer, m = member
    buy = event("pos-big", "purchase", customer, "2020-03-02", amount="650.00", pay_with="membership")
    [no] = cli.post(buy)
    assert (no["status"], no["reason"], no["duplicate"], no["entries"]) == ("declined", "insufficient_allowance", False, [])
    assert no["available"] == "600.00"
    before = snapshot(cli, customer, m)
    assert before[0]["balance"] == "500.00" and before[2] == 0

    # Top the allowance up: the same purchase would now go through, but the id was used.
    [adj] = cli.post(event("adj-1", "adjustment", customer, "2020-03-03", unit="allowance", amount="200.00", reason="goodwill"))
    assert adj["balance"] == "700.00"
    [again] = cli.post(buy)
    assert (again["status"], again["reason"], again["duplicate"]) == ("declined", "insufficient_allowance", True)
    assert cli.json("membership", "show", m)["allowance"]["balance"] == "700.00"
    assert cli.json("points", "show", customer)["balance"] == 0
    # A new id for the same sale is a new event and is approved.
    [ok] = cli.post(dict(buy, id="pos-big-2"))
    assert (ok["status"], ok["balance"]) == ("approved", "50.00")


# --- companies ------------------------------------------------------------------------------

def test_other_company_cannot_see_or_post_for_first_companys_records(cli, member):
    customer, m = member
    [mine] = cli.post(event("pos-1", "purchase", customer, "2020-03-02", amount="20.00", pay_with="membership"))
    assert mine["status"] == "approved"
    before = snapshot(cli, customer, m)
    assert cli.out("companies", "add", "other", "--name", "Other") == "other"

    res = cli("--company", "other", "membership", "show", m, "--json", expect=1)
    assert "no membership" in res.stderr and m in res.stderr
    res = cli("--company", "other", "statement", m, "--from", "2020-01-01", "--to", "2020-12-31", expect=1)
    assert "no membership" in res.stderr
    res = cli("--company", "other", "points", "show", customer, expect=1)
    assert "no customer" in res.stderr and customer in res.stderr
    res = cli("--company", "other", "enroll", customer, "care-club", "--on", "2020-02-01", expect=1)
    assert "no customer" in res.stderr

    text = json.dumps(event("pos-2", "purchase", customer, "2020-03-03", amount="20.00", pay_with="membership",
                            membership=m)) + "\n"
    res = cli("--company", "other", "events", "post", "-", input=text, expect=1)
    [r] = [json.loads(x) for x in res.stdout.splitlines()]
    assert (r["status"], r["code"]) == ("rejected", "not_found")
    assert "no customer" in r["message"]
    # Its own customer cannot reach the first company's membership either.
    theirs = cli.out("--company", "other", "customers", "add", "--name", "Mallory")
    text = json.dumps(event("pos-3", "purchase", theirs, "2020-03-03", amount="20.00", pay_with="membership",
                            membership=m)) + "\n"
    res = cli("--company", "other", "events", "post", "-", input=text, expect=1)
    [r] = [json.loads(x) for x in res.stdout.splitlines()]
    assert (r["status"], r["code"]) == ("rejected", "not_found")
    assert "no membership" in r["message"] and m in r["message"]
    # Nor the first company's plans and rules.
    assert cli.json("--company", "other", "rulesets", "list") == []
    assert "no ruleset" in cli("--company", "other", "rulesets", "show", "care-club", expect=1).stderr
    assert "no ruleset" in cli("--company", "other", "enroll", theirs, "care-club", "--on", "2020-02-01", expect=1).stderr
    assert cli.json("--company", "other", "customers", "list") == [{"id": theirs, "name": "Mallory", "email": None,
                                                               "phone": None, "external_id": None, "location": None,
                                                               "service_address": None}]
    assert [c["id"] for c in cli.json("customers", "list")] == [customer]
    assert snapshot(cli, customer, m) == before

    # Event ids are per company: the other company's "pos-1" is its own, new event.
    text = json.dumps(event("pos-1", "referral", theirs, "2020-03-04", referred_name="Eve")) + "\n"
    res = cli("--company", "other", "events", "post", "-", input=text)
    [r] = [json.loads(x) for x in res.stdout.splitlines()]
    assert (r["status"], r["duplicate"], r["customer"]["id"]) == ("processed", False, theirs)
    assert snapshot(cli, customer, m) == before


# --- audit ----------------------------------------------------------------------------------

def test_audit_reports_no_drift_after_a_mixed_run(cli, member):
    customer, m = member
    other = cli.out("customers", "add", "--name", "Alan Turing")
    cli.post(
        event("a-1", "purchase", customer, "2020-02-01", amount="450.00", pay_with="membership"),
        event("a-2", "purchase", customer, "2020-02-02", amount="120.00", pay_with="membership"),  # into overdraft
        event("a-3", "purchase", customer, "2020-02-03", amount="500.00", pay_with="membership"),  # declined
        event("a-4", "service_completed", customer, "2020-02-04", service_code="AC_TUNE"),
        event("a-5", "service_completed", customer, "2020-02-05", service_code="AC_TUNE", amount="80.00"),
        event("a-6", "purchase", other, "2020-02-06", amount="75.00", pay_with="card"),
        event("a-7", "redemption", customer, "2020-02-07", points=100),
        event("a-8", "adjustment", other, "2020-02-08", unit="points", amount="-5", reason="typo"),
        event("a-1", "purchase", customer, "2020-02-01", amount="450.00", pay_with="membership"),  # duplicate
    )
    post_raw(cli, "garbage\n", expect=1)
    cli("run-due", "--as-of", "2021-06-01")
    cli.post(event("a-9", "purchase", customer, "2021-06-02", amount="10.00", pay_with="membership"))
    report = cli.json("audit")
    assert report["ok"] is True and report["drift"] == []
    assert report["accounts_checked"] >= 5 and report["lots_checked"] >= 3
    assert "no drift" in cli.out("audit")
    # The run really did something: overdraft recovered at renewal, points left after expiry.
    a = cli.json("membership", "show", m)["allowance"]
    assert (a["balance"], a["overdraft_used"]) == ("420.00", "0.00")


def test_audit_reports_rows_whose_references_point_nowhere(cli, member, db_url, tmp_path):
    """The pipeline's tables carry no foreign keys (migration 0006): the audit checks the
    references itself. A ledger entry on an account that does not exist, and a points lot moved
    into another company's account, are each reported with their row ids."""
    customer, _m = member
    cli.post(event("r-1", "purchase", customer, "2020-02-01", amount="100.00", pay_with="membership"))
    assert cli.json("audit")["ok"] is True
    other = Cli(db_url)
    other.env["KEEPWELL_COMPANY"] = "other"
    other("init")
    (tmp_path / "theirs.yaml").write_text(POINTS)
    other("rulesets", "publish", str(tmp_path / "theirs.yaml"))
    theirs = other.out("customers", "add", "--name", "Someone Else")
    other.post(event("o-1", "purchase", theirs, "2020-02-01", amount="10.00", pay_with="card"))
    company = "(SELECT id FROM companies WHERE slug = :slug)"
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as c:  # tampering below the application
            entry = c.execute(sa.text(f"SELECT max(id) FROM ledger_entries WHERE company_id = {company}"),
                              {"slug": "default"}).scalar()
            c.execute(sa.text("INSERT INTO ledger_entries (company_id, account_id, kind, amount, balance_after,"
                              " event_id, ruleset, rule, effective_date, created_at)"
                              " SELECT company_id, 999999, kind, 0, 0, event_id, ruleset, 'tampered', effective_date,"
                              " created_at FROM ledger_entries WHERE id = :e"), {"e": entry})
            their_account = c.execute(sa.text(f"SELECT min(id) FROM accounts WHERE company_id = {company}"),
                                      {"slug": "other"}).scalar()
            lot = c.execute(sa.text(f"SELECT min(id) FROM points_lots WHERE company_id = {company}"),
                            {"slug": "default"}).scalar()
            assert their_account is not None and lot is not None
            c.execute(sa.text("UPDATE points_lots SET account_id = :a WHERE id = :l"), {"a": their_account, "l": lot})
    finally:
        engine.dispose()
    report = json.loads(cli("audit", "--json", expect=1).stdout)
    problems = {p["reference"]: p for p in report["drift"] if "reference" in p}
    assert report["ok"] is False
    assert set(problems) == {"ledger entry → account", "points lot → account"}
    assert problems["points lot → account"]["examples"] == [lot]
    assert problems["ledger entry → account"]["rows"] == 1
    assert "problem(s)" in cli("audit", expect=1).stdout
    # The other company's own audit is clean: its rows are all sound.
    assert other.json("audit")["ok"] is True


def test_customer_with_two_memberships(cli, tmp_path):
    """Several active memberships: paying with the membership needs its id; a referral, a card
    purchase and a covered visit go through without one."""
    (tmp_path / "a.yaml").write_text(
        "apiVersion: keepwell/v1\nkind: Plan\nmetadata: {id: heat, name: Heat}\n"
        "spec: {allowance: {amount: '100.00', period: yearly}, included_services: [{code: FURNACE_TUNE, quantity: 1}]}\n")
    (tmp_path / "b.yaml").write_text(
        "apiVersion: keepwell/v1\nkind: Plan\nmetadata: {id: pipes, name: Pipes}\n"
        "spec: {allowance: {amount: '50.00', period: yearly}, included_services: [{code: WH_FLUSH, quantity: 1}]}\n")
    (tmp_path / "r.yaml").write_text(
        "apiVersion: keepwell/v1\nkind: EarningRules\nmetadata: {id: r, name: R}\n"
        "spec: {rules: [{id: ref, when: {event: referral}, earn: {points: 100}}]}\n")
    cli("rulesets", "publish", *(str(tmp_path / f) for f in ("a.yaml", "b.yaml", "r.yaml")))
    c = cli.out("customers", "add", "--name", "Two Plans")
    heat = cli.out("enroll", c, "heat", "--on", "2024-01-01")
    pipes = cli.out("enroll", c, "pipes", "--on", "2024-01-01")
    [ambiguous] = cli.post(event("p1", "purchase", c, "2024-02-01", amount="10.00", pay_with="membership"))
    assert (ambiguous["status"], ambiguous["reason"]) == ("declined", "ambiguous_membership")
    [named] = cli.post(event("p2", "purchase", c, "2024-02-01", amount="10.00", pay_with="membership", membership=pipes))
    assert (named["status"], named["balance"]) == ("approved", "40.00")
    [ref] = cli.post(event("ref1", "referral", c, "2024-02-02", referred_name="Neighbour"))
    assert (ref["status"], ref["points"]["earned"]) == ("processed", 100)
    [card] = cli.post(event("p3", "purchase", c, "2024-02-03", amount="25.00", pay_with="card"))
    assert (card["status"], card["charged"]) == ("approved", "25.00")
    [visit] = cli.post(event("v1", "service_completed", c, "2024-02-04", service_code="WH_FLUSH"))
    assert (visit["covered"], visit["membership"]) == (True, pipes)
    assert cli.json("membership", "show", heat)["allowance"]["balance"] == "100.00"
