"""Reports (their own issue): the membership statement's figures computed by hand, the same from
the use case, the CLI and the API; the filters a report takes checked with their field named;
the CSV, the Excel workbook and the PDF carry the same figures."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import date

import pytest

from keepwell.app import create_app
from keepwell.infra.settings import Settings
from keepwell.kernel.errors import InvalidDocument
from keepwell.usecases import apikeys, customers, memberships, reports
from support import Cli, event, make_app

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "250.00", "period": "monthly", "overdraft": {"limit": "50.00"}},
                 "tiers": [{"id": "gold", "name": "Gold", "price": {"monthly": "20.00"}}]}}


@pytest.fixture
def world(db_url):
    svc = make_app(db_url)
    svc.publish(PLAN, "test", date(1970, 1, 1))
    ann = customers.add_customer(svc, "default", "Ann Allowance", "ann@example.com")
    bo = customers.add_customer(svc, "default", "Bo Saver", "bo@example.com")
    ann_m = memberships.enroll(svc, "default", ann, "club", date(2025, 1, 1))["membership"]
    bo_m = memberships.enroll(svc, "default", bo, "club", date(2025, 1, 15))["membership"]
    svc.post_event(event("a-1", "purchase", ann, "2025-01-10", amount="100.00", pay_with="membership"))
    svc.post_event(event("a-2", "purchase", ann, "2025-01-20", amount="180.00", pay_with="membership"))
    svc.post_event(event("b-1", "purchase", bo, "2025-01-20", amount="40.00", pay_with="membership"))
    svc.run_due(date(2025, 2, 20))
    yield svc, ann, ann_m, bo, bo_m
    svc.close()


def rows(data: dict, section: int = 0) -> list[dict]:
    return data["sections"][section]["rows"]


def test_a_membership_statement_reads_like_a_bank_statement(world):
    svc, _ann, ann_m, _bo, _bo_m = world
    data = reports.run(svc, "default", "statement", membership=ann_m, **{"from": "2025-01-01", "to": "2025-02-10"})
    lines = [(r["date"], r["description"], r["amount"], r["balance"], r["overdraft_used"]) for r in rows(data)]
    # By hand: 250.00 granted on Jan 1; 100.00 spent leaves 150.00; 180.00 spends the 150.00 left and
    # 30.00 of the 50.00 overdraft. Feb 1 the period renews: nothing left to expire, 250.00 granted,
    # and the 30.00 overdraft used is paid back from it (the Membership Overdraft Payment): 220.00.
    assert lines[0] == ("2025-01-01", "Opening balance", None, "0.00", "0.00")
    assert ("2025-01-01", "Membership allowance", "250.00", "250.00", "0.00") in lines
    assert any(d == "2025-01-10" and a == "-100.00" and b == "150.00" for d, _, a, b, _ in lines)
    assert any(d == "2025-01-20" and a == "-180.00" and b == "0.00" and o == "30.00" for d, _, a, b, o in lines)
    assert ("2025-02-01", "Membership Overdraft Payment", "-30.00", "220.00", "0.00") in lines
    assert lines[-1] == ("2025-02-10", "Closing balance", None, "220.00", "0.00")


def test_the_plan_statement_has_one_row_per_membership_that_adds_up(world):
    svc, _ann, ann_m, _bo, bo_m = world
    data = reports.run(svc, "default", "statement", plan="club", **{"from": "2025-01-01", "to": "2025-02-10"})
    by_id = {r["membership"]: r for r in rows(data)}
    assert list(by_id) == [ann_m, bo_m]  # oldest first
    ann = by_id[ann_m]
    # Ann: granted 250 (Jan) + 250 (Feb) = 500; charges 100 + 180 = 280, of which 30 from the
    # overdraft; paid back 30 on Feb 1. 0 + 500 - 280 + 30 - 30 = 220.
    assert (ann["opening"], ann["granted"], ann["charges"], ann["from_overdraft"], ann["overdraft_payments"],
            ann["expired"], ann["closing"], ann["overdraft_used"]) == (
        "0.00", "500.00", "-280.00", "30.00", "-30.00", "0.00", "220.00", "0.00")
    bo = by_id[bo_m]
    # Bo, enrolled Jan 15: 250 granted, 40 spent; his period ends Feb 14, so on Feb 10 he has 210.
    assert (bo["granted"], bo["charges"], bo["closing"]) == ("250.00", "-40.00", "210.00")
    # From Feb 15 on, Bo's 210 unused expires on his period end and 250 comes in: 0 - 210 + 250 = 250... as of
    # Feb 20 his new period has begun.
    later = {r["membership"]: r for r in rows(reports.run(svc, "default", "statement", plan="club",
                                                          **{"from": "2025-02-11", "to": "2025-02-20"}))}
    assert (later[bo_m]["opening"], later[bo_m]["expired"], later[bo_m]["granted"], later[bo_m]["closing"]) == (
        "210.00", "-210.00", "250.00", "250.00")


def test_report_filters_are_checked_and_named(world):
    svc, *_ = world
    with pytest.raises(InvalidDocument) as bad:
        reports.run(svc, "default", "statement", **{"from": "2025-03-01", "to": "2025-02-01"})
    assert bad.value.problems[0].path == "from"
    with pytest.raises(InvalidDocument) as bad:
        reports.run(svc, "default", "statement", **{"from": "2025-13-01"})
    assert bad.value.problems[0].path == "from" and "like 2026-01-31" in bad.value.problems[0].message
    with pytest.raises(InvalidDocument) as bad:
        reports.run(svc, "default", "statement", plan="no-such-plan")
    assert bad.value.problems[0].path == "plan"
    with pytest.raises(InvalidDocument) as bad:
        reports.run(svc, "default", "statement", location="Nowhere")
    assert bad.value.problems[0].path == "location"
    names = [r["name"] for r in reports.list_reports(svc, "default")]
    assert "statement" in names


def test_the_cli_the_api_and_the_files_show_the_same_figures(world, db_url, tmp_path):
    svc, _ann, ann_m, _bo, _bo_m = world
    period = {"from": "2025-01-01", "to": "2025-02-10"}
    expected = reports.run(svc, "default", "statement", plan="club", **period)
    cli = Cli(db_url)
    assert cli.json("report", "statement", "--plan", "club", "--from", "2025-01-01", "--to", "2025-02-10")[
        "sections"] == expected["sections"]
    listed = cli.out("report", "list")
    assert "statement" in listed and "--membership" in listed
    refused = cli("report", "statement", "--from", "2025-01-01", "--tier", "gold", "--membership", "nope", expect=1)
    assert "membership" in refused.output
    # The API.
    app = create_app({"TESTING": True}, service=svc, settings=Settings.from_env({"KEEPWELL_SECRET_KEY": "k"}))
    auth = {"Authorization": f"Bearer {apikeys.create(svc, 'default', 'reports', ['read'])}"}
    client = app.test_client()
    got = client.get("/api/v1/reports/statement?plan=club&from=2025-01-01&to=2025-02-10", headers=auth)
    assert got.status_code == 200 and got.json["sections"] == expected["sections"]
    assert client.get("/api/v1/reports/no-such", headers=auth).status_code == 404
    assert client.get("/api/v1/reports/statement?from=soon", headers=auth).status_code == 422
    # CSV and Excel hold the same figures, numbers as numbers in the workbook.
    csv_file = client.get("/api/v1/reports/statement?plan=club&from=2025-01-01&to=2025-02-10&format=csv",
                          headers=auth)
    assert csv_file.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(csv_file.get_data(as_text=True))))
    header_at = next(i for i, r in enumerate(table) if r and r[0] == "Membership")
    csv_rows = [r for r in table[header_at + 1:] if r and r[0].startswith("mem_")]
    out = tmp_path / "statement.xlsx"
    cli("report", "statement", "--plan", "club", "--from", "2025-01-01", "--to", "2025-02-10", "--xlsx", "-o",
        str(out))
    from openpyxl import load_workbook

    sheet = load_workbook(out, read_only=True)["Memberships"]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = next(i for i, r in enumerate(cells) if r and r[0] == "Membership")
    xlsx_rows = [r for r in cells[header + 1:] if r and str(r[0]).startswith("mem_")]
    assert len(xlsx_rows) == len(csv_rows) == 2
    for x, c in zip(xlsx_rows, csv_rows, strict=True):
        assert [str(v) for v in x[:3]] == c[:3]
        assert all(isinstance(v, (int, float)) for v in x[3:])  # numbers, formatted, not text
        assert [f"{v:.2f}" for v in x[3:]] == c[3:]
    # The PDF shows the figures (read back from the rendered page).
    pdf = tmp_path / "statement.pdf"
    cli("report", "statement", "--plan", "club", "--from", "2025-01-01", "--to", "2025-02-10", "--pdf", "-o",
        str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Ann Allowance" in text and "220.00" in text and "Membership statement" in text
