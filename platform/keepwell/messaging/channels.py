"""Where messages leave the system: email over SMTP, SMS through a provider, webhooks over HTTP.

Each channel takes a rendered `Message` and either returns a delivery receipt or raises
`DeliveryError` (retryable or not). The composition roots build the channels from the settings
(`ChannelSettings`), once per process.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import hmac
import ipaddress
import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from standardwebhooks.webhooks import Webhook as Signer

from ..infra.pdf import html_to_pdf
from ..infra.tables import aware
from ..kernel.errors import DeliveryError

__all__ = ["Channel", "ChannelSettings", "DeliveryError", "FileSms", "Message", "SmtpEmail", "TwilioSms", "Webhook",
           "channels_from", "idempotency_token"]


@dataclass(frozen=True)
class Message:
    key: str  # the outbox key: stable across retries, used as Message-ID / idempotency key
    channel: str
    to: str
    subject: str
    body: str
    data: dict = field(default_factory=dict)
    created_at: datetime | None = None  # when the message was queued: the same in every resend
    type: str | None = None  # a webhook's event type (membership.enrolled...); else a notification's
    # Documents sent with an email, as (file name, HTML): each goes as a PDF (an invoice, a receipt).
    attachments: tuple[tuple[str, str], ...] = ()
    # Files sent with an email as they are, as (file name, media type, content): a scheduled report.
    files: tuple[tuple[str, str, bytes], ...] = ()


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> str:
        """Deliver; return the provider's id or a receipt. Raise DeliveryError on failure."""


@dataclass(frozen=True)
class ChannelSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_tls: str = "none"  # none | starttls | ssl
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "Keepwell <no-reply@keepwell.local>"
    sms_provider: str = "file"  # file | twilio
    sms_file: str = "instance/sms.log"
    sms_from: str = "+15550000000"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    http_timeout: float = 10.0
    # Where webhooks may go: "public" addresses only, also "loopback" (tests, a local relay), or "any".
    webhook_networks: str = "public"


class SmtpEmail:
    name = "email"

    def __init__(self, settings: ChannelSettings):
        self.s = settings

    def send(self, message: Message) -> str:
        # Headers are not folded below the RFC 5322 limit of 998: X-Keepwell-Key must reach the
        # receiver verbatim (folded, or RFC 2047-encoded when long, it no longer matches the key).
        mail = EmailMessage(policy=_SMTP_POLICY)
        mail["From"] = self.s.mail_from
        mail["To"] = message.to
        mail["Subject"] = message.subject
        # Stable across retries, so a receiving system can drop a duplicate after a crash.
        mail["Message-ID"] = f"<{hashlib.sha1(message.key.encode()).hexdigest()}@keepwell>"
        mail["X-Keepwell-Key"] = message.key
        mail.set_content(message.body)
        for filename, html in message.attachments:
            mail.add_attachment(html_to_pdf(html), maintype="application", subtype="pdf", filename=filename)
        for filename, media_type, content in message.files:
            maintype, _, subtype = media_type.partition("/")
            mail.add_attachment(content, maintype=maintype or "application", subtype=subtype or "octet-stream",
                                filename=filename)
        try:
            if self.s.smtp_tls == "ssl":
                client = smtplib.SMTP_SSL(self.s.smtp_host, self.s.smtp_port, timeout=self.s.http_timeout,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self.s.smtp_host, self.s.smtp_port, timeout=self.s.http_timeout)
            with client:
                if self.s.smtp_tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.s.smtp_user:
                    client.login(self.s.smtp_user, self.s.smtp_password or "")
                client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc.recipients}", retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.s.smtp_host}:{self.s.smtp_port}: {exc}") from exc
        return mail["Message-ID"]


_SMTP_POLICY = email.policy.default.clone(max_line_length=998)


class FileSms:
    """Development SMS: appends each message as a JSON line to a file."""

    name = "sms"

    def __init__(self, settings: ChannelSettings):
        self.path = Path(settings.sms_file)
        self.sender = settings.sms_from

    def send(self, message: Message) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(
                json.dumps({"key": message.key, "from": self.sender, "to": message.to, "body": message.body}) + "\n"
            )
        return f"file:{message.key}"


class TwilioSms:
    """SMS through Twilio's REST API (Messages resource), with the outbox key as idempotency key."""

    name = "sms"

    def __init__(self, settings: ChannelSettings):
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise DeliveryError(
                "KEEPWELL_TWILIO_ACCOUNT_SID and KEEPWELL_TWILIO_AUTH_TOKEN are required", retryable=False
            )
        self.s = settings

    def send(self, message: Message) -> str:
        url = f"{self.s.twilio_base_url}/2010-04-01/Accounts/{self.s.twilio_account_sid}/Messages.json"
        body = urllib.parse.urlencode({"To": message.to, "From": self.s.sms_from, "Body": message.body}).encode()
        token = base64.b64encode(f"{self.s.twilio_account_sid}:{self.s.twilio_auth_token}".encode()).decode()
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Authorization": f"Basic {token}", "Content-Type": "application/x-www-form-urlencoded",
            "I-Twilio-Idempotency-Token": idempotency_token(message.key)})
        return _http(req, self.s.http_timeout).get("sid", "")


def idempotency_token(key: str, limit: int = 64) -> str:
    """The outbox key when it fits, else its SHA-256: cutting it off would give two messages that
    share a long prefix (two triggers of one event) the same token, and the second would be dropped."""
    return key if len(key) <= limit else hashlib.sha256(key.encode()).hexdigest()[:limit]


class Webhook:
    """POST the message as JSON. Signed two ways: `X-Keepwell-Signature` (HMAC-SHA256 of the body
    with the secret), and, when the secret is a Standard Webhooks one (`whsec_...`), the Standard
    Webhooks headers `webhook-id` (the outbox key: the same on every retry), `webhook-timestamp`
    and `webhook-signature` (`v1,<signature>` for each secret in force: two during a rotation),
    made by the `standardwebhooks` library. The body carries `type`, `timestamp` and `data`."""

    name = "webhook"

    def __init__(self, settings: ChannelSettings, secret: str = "", previous: tuple[str, ...] = ()):
        self.settings = settings
        self.timeout = settings.http_timeout
        self.secret = secret
        self.previous = previous

    def with_secret(self, secret: str, previous: tuple[str, ...] = ()) -> Webhook:
        """The same channel signing with another secret (a company's own), and its previous ones."""
        return Webhook(self.settings, secret, previous)

    def send(self, message: Message) -> str:
        now = datetime.now(UTC).replace(microsecond=0)
        trigger = (message.data.get("trigger") or {}).get("id") if isinstance(message.data, dict) else None
        # The body is the same on every resend (the receiver drops copies by webhook-id); only
        # the webhook-timestamp header says when this send happened.
        queued = aware(message.created_at).replace(microsecond=0) if message.created_at else now
        if message.type:  # a subscribed endpoint's event: Standard Webhooks' type, timestamp and data
            content: dict = {"type": message.type, "timestamp": queued.isoformat(), "id": message.key,
                             "data": message.data}
        else:
            content = {"type": f"notification.{trigger or 'message'}", "timestamp": queued.isoformat(),
                       "id": message.key, "subject": message.subject, "text": message.body, "data": message.data}
        body = json.dumps(content, sort_keys=True).encode()
        sig = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Keepwell-Signature": f"sha256={sig}",
                   "Idempotency-Key": message.key}
        headers.update(standard_headers(message.key, now, body, (self.secret, *self.previous)))
        check_destination(message.to, self.settings.webhook_networks)
        req = urllib.request.Request(message.to, data=body, method="POST", headers=headers)
        _http(req, self.timeout, _NO_REDIRECTS)
        return message.key


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the error it is for a webhook (it could point anywhere)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


def check_destination(url: str, networks: str = "public") -> None:
    """Refuse a webhook URL that is not http(s), or whose host resolves to a loopback, private,
    link-local or otherwise non-public address (unless `networks` allows it): a tenant's URL
    must not reach the servers Keepwell runs beside."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"{url!r} is not an http(s) URL", retryable=False)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"{parts.hostname}: {exc}") from exc  # DNS may come back: retried
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if networks == "any" or ip.is_global:
            continue
        if ip.is_loopback and networks == "loopback":
            continue
        raise DeliveryError(f"{parts.hostname} resolves to {ip}, which is not a public address: webhooks go only "
                            "to the internet (KEEPWELL_WEBHOOK_NETWORKS)", retryable=False)


def standard_headers(msg_id: str, at: datetime, body: bytes, secrets: tuple[str, ...]) -> dict[str, str]:
    """Standard Webhooks headers for these `whsec_` secrets (none when there is none)."""
    signatures = [Signer(s).sign(msg_id, at, body.decode()) for s in secrets if s.startswith("whsec_")]
    if not signatures:
        return {}
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(signatures)}


def _http(req: urllib.request.Request, timeout: float, opener: urllib.request.OpenerDirector | None = None) -> dict:
    try:
        with (opener.open if opener is not None else urllib.request.urlopen)(req, timeout=timeout) as resp:
            text = resp.read().decode() or "{}"
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response (and its socket) open
        # 4xx other than 408/429 will not get better by retrying.
        retryable = exc.code >= 500 or exc.code in (408, 429)
        raise DeliveryError(f"HTTP {exc.code} from {req.full_url}", retryable=retryable, http_status=exc.code) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"{req.full_url}: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError:
        return {}


def channels_from(settings: ChannelSettings, webhook_secret: str = "") -> dict[str, Channel]:
    sms = TwilioSms(settings) if settings.sms_provider == "twilio" else FileSms(settings)
    return {"email": SmtpEmail(settings), "sms": sms, "webhook": Webhook(settings, webhook_secret)}
