"""Every setting Keepwell reads, in one place. Only the composition roots (the CLI's main, the
web app factory, the worker) call `Settings.from_env`; everything else is handed what it needs.

Each field names its environment variable, its default and what it means; README's
configuration table is generated from these (`settings_table`) and a test keeps the two equal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..kernel.errors import InvalidDocument


def _setting(env: str, default: Any, help: str, parse: Callable[[str], Any] = str, shown: str | None = None) -> Any:
    return field(default=default, metadata={"env": env, "help": help, "parse": parse, "shown": shown})


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _mode(text: str) -> str:
    if text not in ("production", "test"):
        raise ValueError(f"KEEPWELL_MODE must be production or test, not {text!r}")
    return text


def _seconds_list(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)


@dataclass(frozen=True)
class Settings:
    home: Path = _setting(
        "KEEPWELL_HOME", Path("instance"), "folder for Keepwell's own files: the SQLite database, the generated "
        "secret key, the development SMS log (made absolute when read)", Path, "`./instance`")
    database_url: str = _setting(
        "KEEPWELL_DATABASE_URL", "", "SQLAlchemy URL; `postgresql://user@host/db` uses psycopg 3",
        shown="`sqlite:///$KEEPWELL_HOME/keepwell.sqlite3`")
    redis_url: str | None = _setting(
        "KEEPWELL_REDIS_URL", None, "Redis for RQ workers; unset means jobs run in-process", shown="unset")
    company: str = _setting(
        "KEEPWELL_COMPANY", "default", "the company (tenant) CLI commands act on; `--company` overrides"
    )
    api_key_cache_seconds: float = _setting(
        "KEEPWELL_API_KEY_CACHE_SECONDS", 10.0, "how long a web process trusts an API key it has checked before "
        "checking it again (a key revoked in another process stops working within this time; in the same "
        "process at once); 0 checks every request", float)
    db_ping_idle_seconds: float = _setting(
        "KEEPWELL_DB_PING_IDLE_SECONDS", 10.0, "PostgreSQL: a pooled connection idle this long is checked before "
        "use (one round trip), so a restarted database costs no failed request; busy connections are not", float)
    secret_key: str | None = _setting(
        "KEEPWELL_SECRET_KEY", None, "signs admin session cookies and CSRF tokens; set the same value on every "
        "web machine", shown="generated into `$KEEPWELL_HOME/secret_key`")
    admin_url: str = _setting(
        "KEEPWELL_ADMIN_URL", "http://localhost:8000/admin", "where the admin is served, for the invitation and "
        "password links that `keepwell users invite` and `users send-link` email (the admin's own pages use "
        "the address they were opened at)")
    https: bool = _setting(
        "KEEPWELL_HTTPS", False, "the app is served over HTTPS (directly or behind a proxy): session cookies are "
        "marked Secure and responses carry HSTS", _flag)
    mode: str = _setting(
        "KEEPWELL_MODE", "production", "`production`, or `test`: a rehearsal installation, where each company may "
        "run on a test clock (`keepwell clock advance --to DATE`); refused in production", _mode)
    api_rate_limit: str = _setting(
        "KEEPWELL_API_RATE_LIMIT", "3000 per minute", "requests an API key may make (Flask-Limiter notation; past it "
        "429 with Retry-After; counted in Redis when configured, so across processes)")
    max_request_bytes: int = _setting(
        "KEEPWELL_MAX_REQUEST_BYTES", 2_000_000, "the largest request body the web app reads (a batch of 500 events "
        "is about 150 kB); larger ones are refused with 413", int)
    session_hours: float = _setting(
        "KEEPWELL_SESSION_HOURS", 12.0, "an admin session ends this long after signing in (and at once on signing "
        "out, a password change or the user being disabled); forms expire with it", float)
    signin_limit_account: str = _setting(
        "KEEPWELL_SIGNIN_LIMIT_ACCOUNT", "5 per 15 minutes", "failed sign-ins allowed per account before it must "
        "wait (Flask-Limiter notation; counted in Redis when configured, so across processes)")
    signin_limit_address: str = _setting(
        "KEEPWELL_SIGNIN_LIMIT_ADDRESS", "20 per 15 minutes", "failed sign-ins allowed per client address")
    password: str | None = _setting(
        "KEEPWELL_PASSWORD", None, "password for `keepwell users add` (otherwise it asks)", shown="unset")
    tick_seconds: int = _setting(
        "KEEPWELL_TICK_SECONDS", 60, "how often workers look for due work and undelivered messages", int)
    job_monitoring_seconds: int = _setting(
        "KEEPWELL_JOB_MONITORING_SECONDS", 30, "how often a worker reports that the job it runs is alive", int)
    job_heartbeat_grace_seconds: int = _setting(
        "KEEPWELL_JOB_HEARTBEAT_GRACE_SECONDS", 60, "how long after its last report a job is taken for abandoned "
        "(its worker died) and given back to the queue", int)
    due_retry_seconds: tuple[int, ...] = _setting(
        "KEEPWELL_DUE_RETRY_SECONDS", (10, 30, 60), "waits between the retries of a failed unit of due work, "
        "comma-separated (one per retry)", _seconds_list, "`10,30,60`")
    smtp_host: str = _setting("KEEPWELL_SMTP_HOST", "127.0.0.1", "email delivery: SMTP server")
    smtp_port: int = _setting("KEEPWELL_SMTP_PORT", 25, "email delivery: SMTP port", int)
    smtp_tls: str = _setting("KEEPWELL_SMTP_TLS", "none", "email delivery: `none`, `starttls` or `ssl`")
    smtp_user: str | None = _setting("KEEPWELL_SMTP_USER", None, "email delivery: SMTP user name", shown="unset")
    smtp_password: str | None = _setting("KEEPWELL_SMTP_PASSWORD", None, "email delivery: SMTP password", shown="unset")
    mail_from: str = _setting("KEEPWELL_MAIL_FROM", "Keepwell <no-reply@keepwell.local>", "sender of emails")
    sms_provider: str = _setting(
        "KEEPWELL_SMS_PROVIDER", "file", "`file` (development: JSON lines in `KEEPWELL_SMS_FILE`) or `twilio`")
    sms_file: str = _setting("KEEPWELL_SMS_FILE", "", "where the `file` SMS provider writes",
                             shown="`$KEEPWELL_HOME/sms.log`")
    sms_from: str = _setting("KEEPWELL_SMS_FROM", "+15550000000", "sender number of SMS")
    twilio_account_sid: str | None = _setting("KEEPWELL_TWILIO_ACCOUNT_SID", None, "Twilio account", shown="unset")
    twilio_auth_token: str | None = _setting("KEEPWELL_TWILIO_AUTH_TOKEN", None, "Twilio auth token", shown="unset")
    twilio_base_url: str = _setting("KEEPWELL_TWILIO_BASE_URL", "https://api.twilio.com", "Twilio's REST API")
    stripe_api_key: str | None = _setting(
        "KEEPWELL_STRIPE_API_KEY", None, "Stripe secret key: set, cards tokenised by Stripe are charged through "
        "Stripe (the sandbox gateway is always there too)", shown="unset")
    stripe_api_base: str = _setting("KEEPWELL_STRIPE_API_BASE", "https://api.stripe.com",
                                    "Stripe's API (a localstripe server in tests)")
    http_timeout: float = _setting("KEEPWELL_HTTP_TIMEOUT", 10.0, "seconds before an SMTP, SMS or webhook call "
                                   "gives up (and is retried later)", float)
    webhook_networks: str = _setting(
        "KEEPWELL_WEBHOOK_NETWORKS", "public", "where webhooks may be delivered: `public` addresses only (no "
        "loopback, private or link-local ones), `loopback` too (tests, a relay on the same machine), or `any`")
    webhook_secret: str = _setting(
        "KEEPWELL_WEBHOOK_SECRET", "", "default HMAC secret for `X-Keepwell-Signature` (per company: "
        "`companies rotate-webhook-secret` or `companies set --webhook-secret`)", shown="empty")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables (`os.environ` unless given); unset ones take their
        defaults. A value that cannot be read is an error naming its variable."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        problems = []
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError:
                problems.append(InvalidDocument.field(f.metadata["env"], f"{raw!r} is not a valid value").problems[0])
        if problems:
            raise InvalidDocument("settings could not be read", problems)
        home = Path(values.get("home", cls.home)).expanduser().resolve()
        values["home"] = home
        values["database_url"] = normalise_database_url(
            values.get("database_url") or f"sqlite:///{home / 'keepwell.sqlite3'}"
        )
        values.setdefault("sms_file", str(home / "sms.log"))
        return cls(**values)


def normalise_database_url(url: str) -> str:
    """Accept the usual postgres:// spellings and use psycopg 3, the driver we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def settings_table() -> str:
    """The configuration table of README, from the fields above."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in fields(Settings):
        shown = f.metadata["shown"] or f"`{_plain(f.default)}`"
        lines.append(f"| `{f.metadata['env']}` | {shown} | {f.metadata['help']} |")
    return "\n".join(lines)


def _plain(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)
