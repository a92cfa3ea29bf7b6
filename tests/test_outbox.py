"""The outbox: notifications written with the ledger, delivered after commit by `keepwell outbox
deliver` (the embedded mode's worker) to a real SMTP server, a file or HTTP SMS provider and
signed webhooks on loopback; retries with backoff, a dead-letter state, replay, opt-outs, quiet
hours and template overrides. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from keepwell.infra.settings import Settings
from keepwell.interfaces.wiring import channel_settings
from keepwell.messaging import outbox
from keepwell.messaging.channels import ChannelSettings, channels_from
from keepwell.usecases.messaging import deliver as deliver_message
from kwmodels import Event, Membership, MessageTemplate, OutboxAttempt, OutboxMessage
from mailserver import HttpRecorder, MailServer, free_port
from support import event, service

TZ = ZoneInfo("America/Denver")
WELCOME = "hvac-welcome"
REDIS_DB = 12  # `jobs status` reads queue counts from Redis (nothing is written there)


# --- helpers ---------------------------------------------------------------------------------

@pytest.fixture
def hvac(cli):
    cli("packs", "install", "hvac")
    return cli


def customer(cli, name: str, email: str | None = None, phone: str | None = None) -> str:
    args = ["customers", "add", "--name", name]
    if email:
        args += ["--email", email]
    if phone:
        args += ["--phone", phone]
    return cli.out(*args)


def listed(cli, status: str | None = None) -> list[dict]:
    return cli.json("outbox", "list", *(["--status", status] if status else []))


def deliver(cli) -> list[dict]:
    return cli.json("outbox", "deliver")


def aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def smtp_env(cli, port: int) -> None:
    cli.env.update({"KEEPWELL_SMTP_HOST": "127.0.0.1", "KEEPWELL_SMTP_PORT": str(port)})


def message_row(url: str, mid: int) -> OutboxMessage:
    with service(url) as app:
        return app.run("default", lambda c: c.session.get(OutboxMessage, mid))


def attempts_of(url: str, mid: int) -> list[tuple[int, str, str]]:
    with service(url) as app:
        return app.run("default", lambda c: [(a.attempt, a.status, a.detail) for a in c.session.scalars(
            sa.select(OutboxAttempt).where(OutboxAttempt.message_id == mid).order_by(OutboxAttempt.id))])


def enrolled_member(cli, name="Ada Lovelace", email="ada@example.com", tier="premium", on="2026-01-15"):
    cid = customer(cli, name, email)
    mid = cli.out("enroll", cid, "hvac-comfort-club", "--tier", tier, "--on", on)
    return cid, mid


def set_override(url: str, name: str, channel: str, subject: str | None, body: str) -> None:
    with service(url) as app:
        app.run("default", lambda c: c.session.add(MessageTemplate(
            company_id=c.company.id, name=name, channel=channel, subject=subject, body=body)))


# --- written with the ledger ---------------------------------------------------------------------

def test_enrolment_writes_the_welcome_email_in_the_same_transaction(hvac, db_url):
    cid, mid = enrolled_member(hvac)
    rows = listed(hvac)
    assert len(rows) == 1
    row = rows[0]
    assert (row["channel"], row["template"], row["status"], row["attempts"], row["customer"]) == (
        "email", WELCOME, "pending", 0, cid)
    assert row["history"] == []
    with service(db_url) as app:
        def check(c):
            msg = c.session.get(OutboxMessage, row["id"])
            ev = c.session.get(Event, msg.event_id)
            assert ev.type == "enrolled" and ev.membership_id == mid and ev.customer_id == cid
            assert msg.key == f"notify:{ev.key}:hvac-comfort-notices:welcome"
            assert msg.ruleset == "hvac-comfort-notices@1" and msg.rule == "welcome"
        app.run("default", check)

    # The same enrolment again (same idempotency key) writes nothing new.
    assert hvac.out("enroll", cid, "hvac-comfort-club", "--tier", "premium", "--on", "2026-01-15") == mid
    assert len(listed(hvac)) == 1

    # An enrolment whose transaction rolls back leaves neither the event nor its message.
    other = customer(hvac, "Rolled Back", "rb@example.com")
    with service(db_url) as app:
        def enrol_then_fail(c):
            from keepwell.events import pipeline as events

            res = events.post(c, event("enroll-rb", "enrolled", other, "2026-02-01", plan="hvac-comfort-club"))
            assert res["status"] == "processed"
            assert c.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                                    .where(OutboxMessage.customer_id == other)) == 1
            raise RuntimeError("the caller's transaction fails after the event")

        with pytest.raises(RuntimeError):
            app.run("default", enrol_then_fail)

        def counts(c):
            return (c.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.customer_id == other)),
                    c.session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.customer_id == other)),
                    c.session.scalar(sa.select(sa.func.count()).select_from(Membership).where(Membership.customer_id == other)))
        assert app.run("default", counts) == (0, 0, 0)
    assert [r["customer"] for r in listed(hvac)] == [cid]


def test_a_declined_event_writes_no_message_and_an_approved_one_does(hvac):
    cid, mid = enrolled_member(hvac, "Bea Basic", "bea@example.com", tier="basic")
    [declined] = hvac.post(event("pos-big-1", "purchase", cid, "2026-03-02", amount="2000.00", pay_with="membership",
                                 membership=mid))
    assert declined["status"] == "declined"
    assert [r["template"] for r in listed(hvac)] == [WELCOME]

    [approved] = hvac.post(event("pos-big-2", "purchase", cid, "2026-03-03", amount="1600.00", membership=mid))
    assert approved["status"] == "approved"
    alerts = [r for r in listed(hvac) if r["template"] == "hvac-big-job-alert"]
    assert len(alerts) == 1
    assert alerts[0]["channel"] == "webhook" and alerts[0]["key"] == "notify:pos-big-2:hvac-comfort-notices:big-job-alert"


# --- delivery -----------------------------------------------------------------------------------

def test_delivery_sends_a_real_email_with_the_customer_and_plan(hvac, db_url):
    cid, mid = enrolled_member(hvac)
    [row] = listed(hvac)
    with MailServer() as smtp:
        smtp_env(hvac, smtp.port)
        out = deliver(hvac)
        assert [(o["message_id"], o["status"]) for o in out] == [(row["id"], "sent")]
        [mail] = smtp.wait_for(1, timeout=10)
        assert mail["To"] == "ada@example.com"
        assert mail["Subject"] == "Welcome to the Comfort Club, Ada Lovelace"
        body = mail.get_content()
        assert "Hi Ada Lovelace," in body
        assert "Comfort Club (Premium) at Default" in body
        assert "renews on 2027-01-15" in body
        assert "2 x Air filter replacement" in body
        assert mail["X-Keepwell-Key"] == row["key"]
        assert mail["Message-ID"] == f"<{hashlib.sha1(row['key'].encode()).hexdigest()}@keepwell>"
        # Nothing is due any more: a second run sends nothing.
        assert deliver(hvac) == []
        assert len(smtp.messages) == 1
    [after] = listed(hvac)
    assert (after["status"], after["attempts"], after["last_error"]) == ("sent", 1, None)
    assert [h["status"] for h in after["history"]] == ["sent"]
    assert "ada@example.com" in after["history"][0]["detail"]


def test_smtp_down_means_retry_later_with_the_error_recorded(hvac, db_url):
    enrolled_member(hvac)
    [row] = listed(hvac)
    smtp_env(hvac, free_port())  # nothing listens there
    before = datetime.now(UTC)
    [out] = deliver(hvac)
    done = datetime.now(UTC)
    assert out["status"] == "retry"
    [after] = listed(hvac)
    assert (after["status"], after["attempts"]) == ("retry", 1)
    assert "Connection refused" in after["last_error"]
    # Backoff: the first retry is 15-30 s after the attempt (jitter in [base/2, base]).
    assert before + outbox.BASE_DELAY / 2 <= aware(after["due_at"]) <= done + outbox.BASE_DELAY
    [(n, status, detail)] = attempts_of(db_url, row["id"])
    assert (n, status) == (1, "failed") and "Connection refused" in detail and "next try at" in detail
    # Not due yet: running again attempts nothing.
    assert deliver(hvac) == []
    assert listed(hvac)[0]["attempts"] == 1


def test_dead_after_max_attempts_listed_counted_and_replayed(hvac, db_url):
    enrolled_member(hvac)
    [row] = listed(hvac)
    mid = row["id"]
    down = channels_from(ChannelSettings(smtp_port=free_port()))
    with service(db_url) as app:
        for n in range(1, outbox.MAX_ATTEMPTS + 1):
            due_at = message_row(db_url, mid).due_at
            now = outbox.aware(due_at) + timedelta(seconds=1)
            res = deliver_message(app, mid, down, now=now)
            msg = message_row(db_url, mid)
            assert msg.attempts == n
            if n < outbox.MAX_ATTEMPTS:
                assert res.status == "retry"
                ceiling = min(outbox.BASE_DELAY * 2 ** (n - 1), outbox.MAX_DELAY).total_seconds()
                delay = (outbox.aware(msg.due_at) - now).total_seconds()
                assert ceiling / 2 <= delay <= ceiling, (n, delay)
            else:
                assert res.status == "dead"
        # Dead is final: even much later it is not tried again.
        assert deliver_message(app, mid, down, now=now + timedelta(days=1)).status == "dead"
    history = attempts_of(db_url, mid)
    assert [a[:2] for a in history] == [(n, "failed") for n in range(1, outbox.MAX_ATTEMPTS + 1)]
    assert f"gave up after {outbox.MAX_ATTEMPTS} attempt(s)" in history[-1][2]

    assert [r["id"] for r in listed(hvac, "dead")] == [mid]
    assert listed(hvac, "retry") == [] and listed(hvac, "pending") == []
    # `jobs status` counts dead letters from the database (queues from Redis, only read here).
    hvac.env["KEEPWELL_REDIS_URL"] = f"redis://127.0.0.1:6379/{REDIS_DB}"
    assert hvac.json("jobs", "status")["dead_lettered"] == 1
    del hvac.env["KEEPWELL_REDIS_URL"]

    # Replay: back in line, delivered once the mail server is there.
    assert hvac.out("outbox", "replay", str(mid)) == f"{mid} pending"
    [again] = listed(hvac)
    assert (again["status"], again["attempts"]) == ("pending", 0)
    with MailServer() as smtp:
        smtp_env(hvac, smtp.port)
        assert [o["status"] for o in deliver(hvac)] == ["sent"]
        assert smtp.keys() == {row["key"]: 1}
    statuses = [h["status"] for h in listed(hvac)[0]["history"]]
    assert statuses == ["failed"] * outbox.MAX_ATTEMPTS + ["replayed", "sent"]
    # Only dead or skipped messages are replayed; unknown ids are reported.
    res = hvac("outbox", "replay", str(mid), expect=1)
    assert "only dead or skipped messages are replayed" in res.stderr
    assert "no outbox message 9999" in hvac("outbox", "replay", "9999", expect=1).stderr


def test_a_refused_recipient_is_dead_at_once(hvac, db_url):
    enrolled_member(hvac)
    with MailServer() as smtp:
        smtp.refuse.add("ada@example.com")
        smtp_env(hvac, smtp.port)
        [out] = deliver(hvac)
        assert out["status"] == "dead"
        assert smtp.messages == []
    [row] = listed(hvac, "dead")
    assert row["attempts"] == 1 and "recipient refused" in row["last_error"]


def test_smtp_login_with_the_configured_account(hvac, db_url):
    enrolled_member(hvac)
    with MailServer(accounts={"mailer": "s3cret"}) as smtp:
        smtp_env(hvac, smtp.port)
        hvac.env.update({"KEEPWELL_SMTP_USER": "mailer", "KEEPWELL_SMTP_PASSWORD": "wrong"})
        [out] = deliver(hvac)
        assert out["status"] == "retry" and "Authentication" in out["detail"]
        assert smtp.messages == []
        assert smtp.logins and all(login == ("mailer", False) for login in smtp.logins)  # each mechanism tried
        [row] = listed(hvac)
        hvac.env["KEEPWELL_SMTP_PASSWORD"] = "s3cret"
        with service(db_url) as app:
            later = outbox.aware(message_row(db_url, row["id"]).due_at) + timedelta(seconds=1)
            res = deliver_message(app, row["id"], channels_from(channel_settings(Settings.from_env(hvac.env))), now=later)
        assert res.status == "sent"
        assert smtp.logins[-1] == ("mailer", True)
        assert smtp.keys() == {row["key"]: 1}


def test_opted_out_customer_is_skipped_and_recorded(hvac, db_url):
    cid, _ = enrolled_member(hvac)
    hvac("customers", "set", cid, "--opt-out", "email")
    with MailServer() as smtp:
        smtp_env(hvac, smtp.port)
        [out] = deliver(hvac)
        assert out["status"] == "skipped"
        assert deliver(hvac) == []
        assert smtp.messages == []
        [row] = listed(hvac)
        assert row["status"] == "skipped"
        assert [(h["status"], h["detail"]) for h in row["history"]] == [("skipped", "customer opted out of email")]
        # Opting in again and replaying the skipped message delivers it.
        hvac("customers", "set", cid, "--opt-in", "email")
        hvac("outbox", "replay", str(row["id"]))
        assert [o["status"] for o in deliver(hvac)] == ["sent"]
        assert smtp.keys() == {row["key"]: 1}


def _window_around(now_local: datetime) -> tuple[str, datetime]:
    """Quiet hours from an hour ago to two hours ahead (minute precision), and when they end."""
    start = (now_local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end_dt = (now_local + timedelta(hours=2)).replace(second=0, microsecond=0)
    return f"{start:%H:%M}-{end_dt:%H:%M}", end_dt


def test_quiet_hours_defer_email_until_they_end(hvac, db_url):
    cid, _ = enrolled_member(hvac)
    hvac("companies", "set", "--timezone", "America/Denver")
    window, end_local = _window_around(datetime.now(TZ))
    hvac("companies", "set", "--quiet-hours", window)
    with MailServer() as smtp:
        smtp_env(hvac, smtp.port)
        [out] = deliver(hvac)
        assert out["status"] == "pending" and out["detail"] == "quiet hours"
        [row] = listed(hvac)
        assert row["status"] == "pending" and row["attempts"] == 0
        assert aware(row["due_at"]) == end_local  # the end of the window, company time
        assert [h["status"] for h in row["history"]] == ["deferred"]
        assert deliver(hvac) == []  # not due before the window ends
        assert smtp.messages == []
        # When the window has ended, it goes.
        with service(db_url) as app:
            res = deliver_message(app, row["id"], channels_from(ChannelSettings(smtp_port=smtp.port)), now=end_local)
        assert res.status == "sent"
        assert smtp.keys() == {row["key"]: 1}


@pytest.mark.parametrize("local_now, expected_end", [
    ("23:30", "next 08:00"),
    ("07:59", "same 08:00"),
    ("21:00", "next 08:00"),
    ("08:00", None),
    ("20:59", None),
    ("12:00", None),
])
def test_quiet_hours_across_midnight(hvac, db_url, local_now, expected_end):
    enrolled_member(hvac)
    hvac("companies", "set", "--timezone", "America/Denver", "--quiet-hours", "21:00-08:00")
    [row] = listed(hvac)
    day = datetime.now(TZ).date() + timedelta(days=3)
    now = datetime.combine(day, time.fromisoformat(local_now), tzinfo=TZ)
    with MailServer() as smtp, service(db_url) as app:
        res = deliver_message(app, row["id"], channels_from(ChannelSettings(smtp_port=smtp.port)), now=now)
        msg = message_row(db_url, row["id"])
        if expected_end is None:
            assert res.status == "sent" and len(smtp.messages) == 1
        else:
            end_day = day + timedelta(days=1) if expected_end.startswith("next") else day
            assert res.status == "pending" and res.detail == "quiet hours"
            assert outbox.aware(msg.due_at) == datetime.combine(end_day, time(8, 0), tzinfo=TZ)
            assert smtp.messages == []


# --- templates ----------------------------------------------------------------------------------

def test_a_company_override_template_wins_over_the_rulesets(hvac, db_url):
    enrolled_member(hvac)
    set_override(db_url, WELCOME, "email", "Hello {{ customer.name }} from {{ company.name }}",
                 "Your plan: {{ membership.plan_name }} / {{ membership.tier_name }}")
    with MailServer() as smtp:
        smtp_env(hvac, smtp.port)
        assert [o["status"] for o in deliver(hvac)] == ["sent"]
        [mail] = smtp.messages
        assert mail["Subject"] == "Hello Ada Lovelace from Default"
        assert mail.get_content().strip() == "Your plan: Comfort Club / Premium"


def test_the_rulesets_template_wins_over_the_shipped_one_which_is_the_fallback(cli, db_url, tmp_path):
    _club_plan(cli, tmp_path)
    notices = tmp_path / "notices.yaml"
    notices.write_text(
        "apiVersion: keepwell/v1\nkind: NotificationTriggers\nmetadata: {id: member-notices, name: Member notices}\n"
        "spec:\n  triggers:\n"
        "    - {id: inline, on: {event: enrolled}, template: welcome, channel: email}\n"
        "    - {id: shipped, on: {event: enrolled}, template: renewal_reminder, channel: email}\n"
        "  templates:\n"
        "    welcome:\n"
        "      subject: 'Our own welcome, {{ customer.name }}'\n"
        "      email: 'Inline body for {{ membership.plan_name }}'\n")
    cli("rulesets", "publish", str(notices))
    enrolled_member(cli)
    with MailServer() as smtp:
        smtp_env(cli, smtp.port)
        assert sorted(o["status"] for o in deliver(cli)) == ["sent", "sent"]
        subjects = {m["X-Keepwell-Key"].rsplit(":", 1)[1]: m for m in smtp.messages}
        assert subjects["inline"]["Subject"] == "Our own welcome, Ada Lovelace"
        assert subjects["inline"].get_content().strip() == "Inline body for Comfort Club"
        assert subjects["shipped"]["Subject"] == "Your Comfort Club membership renews on 2027-01-15"
        assert "Nothing to do: it renews automatically." in subjects["shipped"].get_content()


CLUB = """apiVersion: keepwell/v1
kind: Plan
metadata: {id: hvac-comfort-club, name: Comfort Club}
spec:
  allowance: {amount: "250.00", period: yearly, auto_renewal: true}
  tiers:
    - {id: basic, name: Basic}
    - {id: premium, name: Premium, allowance_amount: "500.00"}
"""


def _club_plan(cli, tmp_path) -> None:
    """A plan like the pack's, published alone: these tests bring their own notifications."""
    plan = tmp_path / "club.yaml"
    plan.write_text(CLUB)
    cli("rulesets", "publish", str(plan))


@pytest.mark.parametrize("body, error", [
    ("{{ nope.x }}", "'nope' is undefined"),
    ("{% if %}", "template error"),
    ("{{ customer.name.__class__.__mro__ }}", "template error"),
    ("{{ 1 // (customer.name | length - 3) }}", "template error: ZeroDivisionError"),
])
def test_a_template_error_is_dead_not_retried_and_does_not_stop_other_messages(hvac, db_url, body, error):
    # Bob's message is first in line; with the last template only a 3-letter name breaks it.
    bob, _ = enrolled_member(hvac, "Bob", "bob@example.com", on="2026-01-14")
    ada, _ = enrolled_member(hvac, "Ada Lovelace", "ada@example.com", on="2026-01-15")
    set_override(db_url, WELCOME, "email", "Hi", body)
    with MailServer() as smtp:
        smtp_env(hvac, smtp.port)
        out = {o["message_id"]: o["status"] for o in deliver(hvac)}
        rows = {r["customer"]: r for r in listed(hvac)}
        assert out[rows[bob]["id"]] == "dead"
        assert rows[bob]["attempts"] == 1 and error in rows[bob]["last_error"]
        assert [h["status"] for h in rows[bob]["history"]] == ["failed"]
        assert "not retried" in rows[bob]["history"][0]["detail"]
        if "ZeroDivision" in error:  # Ada's name renders: her message goes
            assert out[rows[ada]["id"]] == "sent" and smtp.keys() == {rows[ada]["key"]: 1}
        else:
            assert out[rows[ada]["id"]] == "dead" and smtp.messages == []
        assert deliver(hvac) == []  # dead is not retried
        assert rows[bob]["key"] not in smtp.keys()


# --- SMS and webhooks ---------------------------------------------------------------------------

ANNUAL = """apiVersion: keepwell/v1
kind: Plan
metadata: {id: annual-checkup, name: Annual Checkup}
spec:
  allowance: {amount: "100.00", period: yearly, auto_renewal: false}
"""


def _expiring_members(cli, tmp_path, *people) -> dict[str, str]:
    """Members of a plan that does not renew; the HVAC notices text them 14 days before it ends."""
    plan = tmp_path / "annual.yaml"
    plan.write_text(ANNUAL)
    cli("rulesets", "publish", str(plan))
    ids = {}
    for name, phone in people:
        cid = cli.out("customers", "add", "--name", name, "--phone", phone) if phone else customer(cli, name)
        cli("enroll", cid, "annual-checkup", "--on", "2026-01-15")
        ids[name] = cid
    assert cli.json("run-due", "--as-of", "2026-12-30")["reminders_queued"] == 0
    assert cli.json("run-due", "--as-of", "2026-12-31")["reminders_queued"] == len(people)
    assert cli.json("run-due", "--as-of", "2026-12-31")["reminders_queued"] == 0
    return ids


def test_sms_file_provider_writes_the_line_and_honours_opt_out(hvac, db_url, tmp_path):
    ids = _expiring_members(hvac, tmp_path, ("Ann Text", "+15551230001"), ("Otto Out", "+15551230002"),
                            ("No Phone", None))
    hvac("customers", "set", ids["Otto Out"], "--opt-out", "sms")
    sms_log = tmp_path / "sms.log"
    hvac.env.update({"KEEPWELL_SMS_PROVIDER": "file", "KEEPWELL_SMS_FILE": str(sms_log),
                     "KEEPWELL_SMS_FROM": "+15550009999"})
    out = deliver(hvac)
    rows = {r["customer"]: r for r in listed(hvac)}
    status = {o["message_id"]: o["status"] for o in out}
    assert status[rows[ids["Ann Text"]]["id"]] == "sent"
    assert status[rows[ids["Otto Out"]]["id"]] == "skipped"
    assert status[rows[ids["No Phone"]]["id"]] == "dead"
    assert "no phone number" in rows[ids["No Phone"]]["last_error"]
    lines = [json.loads(line) for line in sms_log.read_text().splitlines()]
    assert lines == [{"key": rows[ids["Ann Text"]]["key"], "from": "+15550009999", "to": "+15551230001",
                      "body": "Default: your Comfort Club membership ends 2027-01-14. Reply or call to renew."}]
    assert rows[ids["Ann Text"]]["template"] == "hvac-expiry-reminder"
    assert deliver(hvac) == []
    assert len(sms_log.read_text().splitlines()) == 1


def test_twilio_adapter_posts_to_the_provider_with_auth_fields_and_idempotency(hvac, db_url, tmp_path):
    _expiring_members(hvac, tmp_path, ("Tia Twilio", "+15551230003"))
    answers = iter([(503, {"message": "try later"}), (201, {"sid": "SM0123456789abcdef"})])
    with HttpRecorder(lambda req: next(answers)) as provider:
        env = {"KEEPWELL_SMS_PROVIDER": "twilio", "KEEPWELL_TWILIO_ACCOUNT_SID": "AC00ff", "KEEPWELL_TWILIO_AUTH_TOKEN": "tok-secret",
               "KEEPWELL_TWILIO_BASE_URL": provider.url, "KEEPWELL_SMS_FROM": "+15550001111"}
        hvac.env.update(env)
        [first] = deliver(hvac)
        assert first["status"] == "retry" and "HTTP 503" in first["detail"]
        with service(db_url) as app:
            later = outbox.aware(message_row(db_url, first["message_id"]).due_at) + timedelta(seconds=1)
            res = deliver_message(app, first["message_id"], channels_from(channel_settings(Settings.from_env(env))), now=later)
        assert res.status == "sent"
        msg = message_row(db_url, first["message_id"])
        assert (msg.status, msg.provider_id, msg.attempts) == ("sent", "SM0123456789abcdef", 2)
        assert len(provider.requests) == 2
        for req in provider.requests:
            assert req["path"] == "/2010-04-01/Accounts/AC00ff/Messages.json"
            assert req["headers"]["Authorization"] == "Basic " + base64.b64encode(b"AC00ff:tok-secret").decode()
            assert req["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
            form = parse_qs(req["body"].decode())
            assert form["To"] == ["+15551230003"] and form["From"] == ["+15550001111"]
            assert form["Body"] == ["Default: your Comfort Club membership ends 2027-01-14. Reply or call to renew."]
        tokens = [req["headers"]["I-Twilio-Idempotency-Token"] for req in provider.requests]
        assert tokens[0] == tokens[1] and 0 < len(tokens[0]) <= 64  # stable across retries


def test_twilio_idempotency_tokens_differ_between_messages_and_a_4xx_is_final(cli, db_url, tmp_path):
    """Two texts about one enrolment have keys that share their first 64 characters; each must
    still carry its own idempotency token, or the provider would drop the second as a repeat."""
    _club_plan(cli, tmp_path)
    notices = tmp_path / "texts.yaml"
    notices.write_text(
        "apiVersion: keepwell/v1\nkind: NotificationTriggers\nmetadata: {id: member-texts, name: Member texts}\n"
        "spec:\n  triggers:\n"
        "    - {id: welcome-text, on: {event: enrolled}, template: welcome, channel: sms}\n"
        "    - {id: renewal-date-text, on: {event: enrolled}, template: renewal_reminder, channel: sms}\n")
    cli("rulesets", "publish", str(notices))
    cid = cli.out("customers", "add", "--name", "Sam Sms", "--phone", "+15551230004")
    cli("enroll", cid, "hvac-comfort-club", "--on", "2026-01-15")
    rows = listed(cli)
    assert len(rows) == 2 and rows[0]["key"][:64] == rows[1]["key"][:64]
    with HttpRecorder(lambda req: (201, {"sid": f"SM{len(req['body'])}"})) as provider:
        cli.env.update({"KEEPWELL_SMS_PROVIDER": "twilio", "KEEPWELL_TWILIO_ACCOUNT_SID": "AC1",
                        "KEEPWELL_TWILIO_AUTH_TOKEN": "t", "KEEPWELL_TWILIO_BASE_URL": provider.url})
        assert [o["status"] for o in deliver(cli)] == ["sent", "sent"]
        tokens = {req["headers"]["I-Twilio-Idempotency-Token"] for req in provider.requests}
        assert len(provider.requests) == 2 and len(tokens) == 2
        assert all(0 < len(t) <= 64 for t in tokens)
        bodies = sorted(parse_qs(req["body"].decode())["Body"][0] for req in provider.requests)
        assert bodies == ["Default: your membership renews on 2027-01-15.",
                          "Welcome to Comfort Club, Sam Sms! Renews 2027-01-15."]

    cid2 = cli.out("customers", "add", "--name", "Rex Rejected", "--phone", "+15551230005")
    cli("enroll", cid2, "hvac-comfort-club", "--on", "2026-01-16")
    with HttpRecorder(lambda req: (400, {"message": "invalid To"})) as provider:
        cli.env["KEEPWELL_TWILIO_BASE_URL"] = provider.url
        out = deliver(cli)
        assert [o["status"] for o in out] == ["dead", "dead"] and all("HTTP 400" in o["detail"] for o in out)
        assert len(provider.requests) == 2
        assert deliver(cli) == []


def test_company_audience_email_goes_to_the_company_address_whatever_the_customer_chose(cli, db_url, tmp_path):
    _club_plan(cli, tmp_path)
    office = tmp_path / "office.yaml"
    office.write_text(
        "apiVersion: keepwell/v1\nkind: NotificationTriggers\nmetadata: {id: office-notices, name: Office notices}\n"
        "spec:\n  triggers:\n"
        "    - {id: new-member, on: {event: enrolled}, template: new-member, channel: email, audience: company}\n"
        "  templates:\n"
        "    new-member:\n"
        "      subject: 'New member: {{ customer.name }}'\n"
        "      email: '{{ customer.name }} joined {{ membership.plan_name }} ({{ membership.tier_name }}).'\n")
    cli("rulesets", "publish", str(office))
    cid, _ = enrolled_member(cli)
    cli("customers", "set", cid, "--opt-out", "email")  # the customer's choice, not the office's
    with MailServer() as smtp:
        smtp_env(cli, smtp.port)
        [out] = deliver(cli)
        assert out["status"] == "dead" and "the company has no address for email" in out["detail"]
        cli("companies", "set", "--email", "office@heating.example")
        [row] = listed(cli)
        cli("outbox", "replay", str(row["id"]))
        assert [o["status"] for o in deliver(cli)] == ["sent"]
        [mail] = smtp.messages
        assert mail["To"] == "office@heating.example"
        assert mail["Subject"] == "New member: Ada Lovelace"
        assert mail.get_content().strip() == "Ada Lovelace joined Comfort Club (Premium)."


def test_a_company_text_has_no_number_to_go_to(cli, db_url, tmp_path):
    """The company has an email address and a webhook URL, but no phone: a text for the office
    is dead with the reason, not sent to the email address as if it were a number."""
    _club_plan(cli, tmp_path)
    office = tmp_path / "office-sms.yaml"
    office.write_text(
        "apiVersion: keepwell/v1\nkind: NotificationTriggers\nmetadata: {id: office-texts, name: Office texts}\n"
        "spec:\n  triggers:\n"
        "    - {id: new-member-text, on: {event: enrolled}, template: welcome, channel: sms, audience: company}\n")
    cli("rulesets", "publish", str(office))
    cli("companies", "set", "--email", "office@heating.example")
    enrolled_member(cli)
    sms_log = tmp_path / "sms.log"
    cli.env.update({"KEEPWELL_SMS_PROVIDER": "file", "KEEPWELL_SMS_FILE": str(sms_log)})
    [out] = deliver(cli)
    assert out["status"] == "dead" and "the company has no phone number for sms" in out["detail"]
    assert not sms_log.exists()


def _big_job_alert(cli, pos: str = "pos-2001") -> dict:
    before = {r["id"] for r in listed(cli)}
    cid, mid = enrolled_member(cli, "Wes Webhook", "wes@example.com", tier="basic")
    [res] = cli.post(event(pos, "purchase", cid, "2026-03-02", amount="1850.00", membership=mid))
    assert res["status"] == "approved"
    cli("customers", "set", cid, "--opt-out", "email")  # only the webhook is of interest here
    [alert] = [r for r in listed(cli) if r["channel"] == "webhook" and r["id"] not in before]
    return alert


def test_webhook_posts_json_signed_with_the_companys_secret(hvac, db_url):
    alert = _big_job_alert(hvac)
    with HttpRecorder(lambda req: (200, {"ok": True})) as hook:
        hvac("companies", "set", "--webhook-url", f"{hook.url}/hooks/keepwell", "--webhook-secret", "-",
             input="s3cret-of-the-company\n")
        hvac.env["KEEPWELL_WEBHOOK_SECRET"] = "the-environment-default"
        out = {o["message_id"]: o["status"] for o in deliver(hvac)}
        assert out[alert["id"]] == "sent"
        [req] = hook.requests
    assert req["path"] == "/hooks/keepwell"
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["Idempotency-Key"] == alert["key"]
    expected = hmac.new(b"s3cret-of-the-company", req["body"], hashlib.sha256).hexdigest()
    assert req["headers"]["X-Keepwell-Signature"] == f"sha256={expected}"
    body = json.loads(req["body"])
    assert body["id"] == alert["key"]
    assert body["subject"] == "Large member job: 1850.00"
    assert "Wes Webhook" in body["text"] and "pos-2001" in body["text"]
    assert body["data"]["data"]["amount"] == "1850.00" and body["data"]["event"]["id"] == "pos-2001"
    assert body["data"]["trigger"] == {"id": "big-job-alert", "ruleset": "hvac-comfort-notices@1"}


def test_webhook_without_a_company_secret_uses_the_default_and_retries_5xx_not_4xx(hvac, db_url):
    alert = _big_job_alert(hvac)
    answers = iter([(500, {}), (410, {})])
    with HttpRecorder(lambda req: next(answers)) as hook:
        hvac("companies", "set", "--webhook-url", hook.url)
        hvac.env["KEEPWELL_WEBHOOK_SECRET"] = "env-default"
        [first] = [o for o in deliver(hvac) if o["message_id"] == alert["id"]]
        assert first["status"] == "retry" and "HTTP 500" in first["detail"]
        req = hook.requests[0]
        assert req["headers"]["X-Keepwell-Signature"] == "sha256=" + hmac.new(
            b"env-default", req["body"], hashlib.sha256).hexdigest()
        with service(db_url) as app:
            later = outbox.aware(message_row(db_url, alert["id"]).due_at) + timedelta(seconds=1)
            res = deliver_message(app, alert["id"], channels_from(ChannelSettings(webhook_networks="loopback"), "env-default"), now=later)
        assert res.status == "dead" and "HTTP 410" in res.detail
        assert len(hook.requests) == 2



def _fail_until_dead(db_url, mid: int, answer) -> list[tuple[float, str]]:
    """Deliver one webhook at each due time (the clock driven forward) until it is final: the
    wait before each retry, and the outcome of every attempt."""
    waits, outcomes = [], []
    channels = channels_from(ChannelSettings(webhook_networks="loopback"), "env-default")
    with service(db_url) as app:
        while True:
            now = outbox.aware(message_row(db_url, mid).due_at) + timedelta(seconds=1)
            res = deliver_message(app, mid, channels, now=now)
            outcomes.append(res.status)
            if res.status != "retry":
                return waits, outcomes
            waits.append((outbox.aware(message_row(db_url, mid).due_at) - now).total_seconds())


def test_a_failing_webhook_is_retried_for_about_three_days_then_the_endpoint_is_turned_off(hvac, db_url):
    hvac("companies", "set", "--email", "office@heating.example")
    alert = _big_job_alert(hvac)
    with HttpRecorder(lambda req: (503, {})) as down:
        hvac("companies", "set", "--webhook-url", f"{down.url}/hook")
        waits, outcomes = _fail_until_dead(db_url, alert["id"], None)
        assert len(down.requests) == outbox.WEBHOOK_ATTEMPTS == len(outcomes)
    assert outcomes == ["retry"] * (outbox.WEBHOOK_ATTEMPTS - 1) + ["dead"]
    # Each wait is the schedule's, up to a fifth shorter (jitter); together about three days.
    for wait, planned in zip(waits, outbox.WEBHOOK_WAITS):
        assert planned.total_seconds() * 0.8 - 1 <= wait <= planned.total_seconds(), (wait, planned)
    assert timedelta(days=2) < timedelta(seconds=sum(waits)) <= timedelta(days=3, hours=1)
    # Nothing got through all that time: the endpoint is off, and the company is told why.
    assert "accepted no webhook since" in hvac.json("companies", "show")["webhook_disabled_reason"]
    [notice] = [r for r in listed(hvac) if r.get("template") == "webhook_disabled"]
    from keepwell.messaging import templates

    row = message_row(db_url, notice["id"])
    text = templates.render(templates.shipped()["webhook_disabled"]["email"],
                            {"company": {"name": "Heat Co"}, "data": row.payload["data"]})
    assert "about three days" in text and "HTTP 503" in text and "410" not in text
    assert "keepwell outbox replay --from" in text


def test_one_message_refused_for_days_does_not_turn_off_an_endpoint_that_takes_others(hvac, db_url):
    first = _big_job_alert(hvac)
    second = _big_job_alert(hvac, "pos-2002")
    with HttpRecorder(lambda req: (500, {}) if b"pos-2001" in req["body"] else (200, {})) as hook:
        hvac("companies", "set", "--webhook-url", hook.url)
        assert {o["message_id"]: o["status"] for o in deliver(hvac)}[second["id"]] == "sent"
        _waits, outcomes = _fail_until_dead(db_url, first["id"], None)
    assert outcomes[-1] == "dead"
    assert hvac.json("companies", "show")["webhook_disabled_reason"] is None
    assert not [r for r in listed(hvac) if r.get("template") == "webhook_disabled"]


def test_replay_of_a_time_range_puts_back_what_a_receiver_missed(hvac, db_url):
    alerts = [_big_job_alert(hvac, f"pos-30{n}") for n in range(3)]
    with HttpRecorder(lambda req: (400, {})) as refusing:  # a 4xx is final: dead at once
        hvac("companies", "set", "--webhook-url", refusing.url)
        assert {o["message_id"]: o["status"] for o in deliver(hvac)}[alerts[0]["id"]] == "dead"
    # Queued on three different days (company time, America/Denver): the range takes the middle one.
    days = ["2026-03-01T12:00:00+00:00", "2026-03-02T12:00:00+00:00", "2026-03-04T12:00:00+00:00"]
    with service(db_url) as app:
        def backdate(c):
            for a, day in zip(alerts, days):
                c.session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == a["id"])
                                  .values(created_at=datetime.fromisoformat(day)))
        app.run("default", backdate)
    out = hvac.out("outbox", "replay", "--from", "2026-03-02", "--to", "2026-03-03", "--channel", "webhook")
    assert out == f"1 message(s) put back in line: {alerts[1]['id']}"
    assert {r["id"]: r["status"] for r in listed(hvac) if r["channel"] == "webhook"} == {
        alerts[0]["id"]: "dead", alerts[1]["id"]: "pending", alerts[2]["id"]: "dead"}
    assert hvac.out("outbox", "replay", "--from", "2026-03-02", "--to", "2026-03-03") == "0 message(s) put back in line"
    assert "before it starts" in hvac("outbox", "replay", "--from", "2026-03-05", "--to", "2026-03-01", expect=1).stderr
    assert "both --from and --to" in hvac("outbox", "replay", "--from", "2026-03-05", expect=2).stderr

# --- reminders ------------------------------------------------------------------------------------

def test_renewal_reminders_are_queued_once_per_membership_and_delivered(hvac, db_url):
    a, ma = enrolled_member(hvac, "Ann Early", "ann@example.com", on="2026-01-15")  # renews 2027-01-15
    b, mb = enrolled_member(hvac, "Ben Later", "ben@example.com", on="2026-02-01")  # renews 2027-02-01
    c, mc = enrolled_member(hvac, "Cal Spring", "cal@example.com", on="2026-03-10")  # renews 2027-03-10

    def reminders():
        return sorted((r["customer"], r["key"]) for r in listed(hvac) if r["template"] == "hvac-renewal-reminder")

    assert hvac.json("run-due", "--as-of", "2026-12-14")["reminders_queued"] == 0
    renewal_a = date(2027, 1, 15)
    as_of = (renewal_a - timedelta(days=30)).isoformat()
    assert hvac.json("run-due", "--as-of", as_of)["reminders_queued"] == 1
    assert hvac.json("run-due", "--as-of", as_of)["reminders_queued"] == 0
    assert [cust for cust, _ in reminders()] == [a]
    as_of_b = (date(2027, 2, 1) - timedelta(days=30)).isoformat()
    assert hvac.json("run-due", "--as-of", as_of_b)["reminders_queued"] == 1
    assert hvac.json("run-due", "--as-of", as_of_b)["reminders_queued"] == 0
    assert sorted(cust for cust, _ in reminders()) == sorted([a, b])
    keys = dict(reminders())
    assert keys[a] == f"notify:hvac-comfort-notices:renewal-reminder:{ma}:2027-01-14"

    # Ann's year ends and renews: no second reminder for the year that just started.
    res = hvac.json("run-due", "--as-of", "2027-01-16")
    assert (res["periods_closed"], res["reminders_queued"]) == (1, 0)
    assert len(reminders()) == 2

    with MailServer() as smtp:
        smtp_env(hvac, smtp.port)
        out = deliver(hvac)
        assert len(out) == 5 and {o["status"] for o in out} == {"sent"}  # 3 welcomes, 2 reminders
        by_key = {m["X-Keepwell-Key"]: m for m in smtp.messages}
        assert set(smtp.keys().values()) == {1}
        mail = by_key[keys[b]]
        assert mail["To"] == "ben@example.com"
        # Delivered after Ann's renewal, her reminder still names the renewal it was about.
        assert by_key[keys[a]]["Subject"] == "Your Comfort Club membership renews on 2027-01-15"
        assert mail["Subject"] == "Your Comfort Club membership renews on 2027-02-01"
        assert "Hi Ben Later," in mail.get_content()


def test_templates_set_list_and_remove_through_the_cli(cli, tmp_path):
    body = tmp_path / "welcome.txt"
    body.write_text("Hello {{ customer.name }}, welcome from {{ company.name }}!")
    assert cli.out("templates", "set", "welcome", "--subject", "Hi {{ customer.name }}", "--body-file", str(body)) == "welcome (email)"
    rows = cli.json("templates", "list")
    assert {"name": "welcome", "channel": "email", "source": "company"} in rows
    assert {"name": "welcome", "channel": "sms", "source": "shipped"} in rows
    bad = tmp_path / "bad.txt"
    bad.write_text("Hello {{ customer.name ")
    res = cli("templates", "set", "welcome", "--body-file", str(bad), expect=1)
    assert "template welcome not saved" in res.stderr and "body: line 1" in res.stderr
    cli("templates", "remove", "welcome")
    assert {"name": "welcome", "channel": "email", "source": "shipped"} in cli.json("templates", "list")


def test_webhooks_follow_standard_webhooks_across_a_secret_rotation(hvac, db_url):
    """A receiver verifies every delivery with the `standardwebhooks` library; after a rotation
    the old secret still verifies for its window, and the new one at once."""
    from standardwebhooks.webhooks import Webhook as Receiver
    from standardwebhooks.webhooks import WebhookVerificationError

    from keepwell.messaging.channels import standard_headers

    # The specification's test vector, through the same code that signs deliveries.
    vector = standard_headers("msg_p5jXN8AQM9LWM0D4loKWxJek", datetime.fromtimestamp(1614265330, tz=UTC),
                              b'{"test": 2432232314}', ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",))
    assert vector["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    with HttpRecorder(lambda req: (200, {"ok": True})) as hook:
        hvac("companies", "set", "--webhook-url", f"{hook.url}/hooks/keepwell")
        old = hvac.out("companies", "rotate-webhook-secret").split(": ")[1].split()[0]
        assert old.startswith("whsec_") and len(base64.b64decode(old[6:])) >= 24
        first_alert = _big_job_alert(hvac)
        assert {o["message_id"]: o["status"] for o in deliver(hvac)}[first_alert["id"]] == "sent"
        new = hvac.out("companies", "rotate-webhook-secret", "--keep-old-hours", "24").split(": ")[1].split()[0]
        second_alert = _big_job_alert(hvac, "pos-2002")
        assert {o["message_id"]: o["status"] for o in deliver(hvac)}[second_alert["id"]] == "sent"
        first, second = hook.requests
    shown = hvac.out("companies", "show", "--json")
    assert old not in shown and new not in shown
    for req, valid in ((first, [old]), (second, [old, new])):
        headers = {k.lower(): v for k, v in req["headers"].items()}
        assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(headers)
        for secret in valid:
            payload = Receiver(secret).verify(req["body"].decode(), headers)
            assert payload["type"] == "notification.big-job-alert" and "timestamp" in payload
            assert payload["data"]["event"]["id"] in ("pos-2001", "pos-2002")
    signatures = {k.lower(): v for k, v in second["headers"].items()}["webhook-signature"]
    assert len(signatures.split()) == 2  # both secrets sign during the window
    with pytest.raises(WebhookVerificationError):  # signed before the new secret existed
        Receiver(new).verify(first["body"].decode(), {k.lower(): v for k, v in first["headers"].items()})



@pytest.mark.parametrize("url, networks, refused", [
    ("http://127.0.0.1:9/hook", "public", True), ("http://localhost:9/hook", "public", True),
    ("http://10.1.2.3/hook", "loopback", True), ("http://169.254.169.254/latest/meta-data", "loopback", True),
    ("http://[::1]:9/hook", "public", True), ("ftp://example.com/hook", "any", True),
    ("http://127.0.0.1:9/hook", "loopback", False), ("http://10.1.2.3/hook", "any", False),
])
def test_webhooks_go_only_where_the_setting_allows(url, networks, refused):
    from keepwell.messaging.channels import DeliveryError, check_destination

    if refused:
        with pytest.raises(DeliveryError) as exc:
            check_destination(url, networks)
        assert exc.value.retryable is False
    else:
        check_destination(url, networks)


def test_a_webhook_to_a_private_address_is_refused_for_good_and_redirects_are_not_followed(hvac, db_url):
    alert = _big_job_alert(hvac)
    with HttpRecorder(lambda req: (302, {})) as hook:
        hvac("companies", "set", "--webhook-url", f"{hook.url}/hooks")
        strict = dict(hvac.env, KEEPWELL_WEBHOOK_NETWORKS="public")
        saved, hvac.env = hvac.env, strict
        try:
            [out] = [o for o in deliver(hvac) if o["message_id"] == alert["id"]]
        finally:
            hvac.env = saved
        assert out["status"] == "dead" and "not a public address" in out["detail"]
        assert hook.requests == []  # nothing was sent
        second = _big_job_alert(hvac, "pos-2002")
        [out] = [o for o in deliver(hvac) if o["message_id"] == second["id"]]
        assert out["status"] == "dead" and "HTTP 302" in out["detail"]  # the redirect was not followed
        assert len(hook.requests) == 1


def test_a_410_turns_the_webhook_off_tells_the_company_and_a_new_url_turns_it_on(hvac, db_url):
    hvac("companies", "set", "--email", "office@heating.example")
    alert = _big_job_alert(hvac)
    with HttpRecorder(lambda req: (410, {})) as gone:
        hvac("companies", "set", "--webhook-url", f"{gone.url}/old")
        [out] = [o for o in deliver(hvac) if o["message_id"] == alert["id"]]
        assert out["status"] == "dead" and "HTTP 410" in out["detail"]
        later = _big_job_alert(hvac, "pos-2002")
        [skipped] = [o for o in deliver(hvac) if o["message_id"] == later["id"]]
        assert skipped["status"] == "skipped" and len(gone.requests) == 1  # nothing more sent there
    rows = listed(hvac)
    [notice] = [r for r in rows if r["channel"] == "email" and r.get("template") == "webhook_disabled"]
    row = message_row(db_url, notice["id"])
    assert (row.audience, row.payload["data"]["url"]) == ("company", f"{gone.url}/old")
    from keepwell.messaging import templates

    wording = templates.shipped()["webhook_disabled"]
    text = templates.render(wording["email"], {"company": {"name": "Heat Co"}, "data": row.payload["data"]})
    assert "410 Gone" in text and f"{gone.url}/old" in text and "--webhook-url" in text
    with HttpRecorder(lambda req: (200, {"ok": True})) as fresh:
        hvac("companies", "set", "--webhook-url", f"{fresh.url}/new")
        third = _big_job_alert(hvac, "pos-2003")
        assert {o["message_id"]: o["status"] for o in deliver(hvac)}[third["id"]] == "sent"
        assert len(fresh.requests) == 1
