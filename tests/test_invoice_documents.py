"""Invoices as documents (the billing issue): `invoices show N --pdf FILE` writes a PDF whose
page, turned into an image by pdftoppm and read back by OCR (tesseract), shows the figures; a
paid invoice is a receipt; the email that sends an invoice carries it as a PDF attachment,
read from a real SMTP server."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest
import yaml

from mailserver import MailServer

PLAN = {"apiVersion": "keepwell/v1", "kind": "Plan", "metadata": {"id": "club", "name": "Comfort Club"},
        "spec": {"allowance": {"amount": "100.00", "period": "monthly"}, "billing": {"anchor_day": 1},
                 "tiers": [{"id": "basic", "name": "Basic", "price": {"monthly": "30.00"}}]}}
TOOLS = ("pdftoppm", "pdftotext", "tesseract")


@pytest.fixture(autouse=True)
def _tools():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        if os.environ.get("KEEPWELL_REQUIRE_BROWSER"):  # CI installs them (.ci/run)
            pytest.fail(f"missing {', '.join(missing)} (apt-get install poppler-utils tesseract-ocr)")
        pytest.skip(f"missing {', '.join(missing)}")


def read_page(pdf: bytes, tmp_path) -> str:
    """What a person sees on page 1: rendered to PNG by pdftoppm, read by OCR."""
    (tmp_path / "doc.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "200", "-f", "1", "-l", "1", "-singlefile", str(tmp_path / "doc.pdf"),
                    str(tmp_path / "page")], check=True, timeout=60)
    assert (tmp_path / "page.png").stat().st_size > 10_000
    return subprocess.run(["tesseract", str(tmp_path / "page.png"), "-", "--psm", "4"], check=True,
                          capture_output=True, text=True, timeout=120).stdout


def member(cli, tmp_path, card: str | None) -> str:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(PLAN))
    cli("rulesets", "publish", str(path), "--effective-from", "2020-01-01")
    cid = cli.out("customers", "add", "--name", "Grace Hopper", "--email", "grace@example.com")
    if card:
        cli("payment-methods", "add", cid, "--test-card", card)
    cli("enroll", cid, "club", "--on", "2026-03-15", "--cadence", "monthly")
    return cid


def test_a_paid_invoice_prints_as_a_receipt_with_its_figures(cli, tmp_path):
    member(cli, tmp_path, "success")
    cli("billing", "run", "--as-of", "2026-03-15")
    out = tmp_path / "receipt.pdf"
    assert cli.out("invoices", "show", "1", "--pdf", str(out)) == str(out)
    seen = read_page(out.read_bytes(), tmp_path)
    for words in ("Receipt", "Grace Hopper", "Comfort Club (Basic)", "16.45", "Amount due", "0.00", "2026-03-15"):
        assert words in seen, (words, seen)


def test_an_unpaid_invoice_is_emailed_as_a_pdf(cli, tmp_path):
    member(cli, tmp_path, None)
    cli("billing", "run", "--as-of", "2026-03-15")
    with MailServer() as smtp:
        cli.env.update({"KEEPWELL_SMTP_HOST": "127.0.0.1", "KEEPWELL_SMTP_PORT": str(smtp.port)})
        sent = cli.json("outbox", "deliver")
        assert [o["status"] for o in sent] == ["sent"]
        [mail] = smtp.wait_for(1, timeout=10)
    assert mail["Subject"].startswith("Invoice 1 from")
    [pdf] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "invoice-1.pdf"
    data = pdf.get_content()
    assert io.BytesIO(data).read(5) == b"%PDF-"
    text = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True, timeout=60).stdout
    assert b"Amount due" in text and b"16.45 USD" in text and b"Invoice" in text
