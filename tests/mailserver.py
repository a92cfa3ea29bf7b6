"""Real servers on loopback for the delivery tests: an SMTP server (aiosmtpd) that keeps what it
receives, and a small HTTP server that records requests (a webhook receiver, a stand-in for
Twilio's REST API)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from collections import Counter
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class _Handler:
    def __init__(self, server: MailServer):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.server.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.server.lock:
            self.server.received.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


class MailServer:
    """aiosmtpd on 127.0.0.1:<port> (a free one by default), in this process. `delay` slows every
    message down; with `accounts` ({user: password}) it offers AUTH and records each login."""

    def __init__(self, delay: float = 0.0, port: int | None = None, accounts: dict[str, str] | None = None):
        self.delay = delay
        self.refuse: set[str] = set()
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.logins: list[tuple[str, bool]] = []
        self.accounts = accounts
        self.lock = threading.Lock()
        self.port = port or free_port()
        auth = {"authenticator": self._authenticate, "auth_require_tls": False} if accounts is not None else {}
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, ready_timeout=10, **auth)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = False
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            ok = self.accounts.get(user) == password
            with self.lock:
                self.logins.append((user, ok))
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [m for _rcpt, m in self.received]

    def keys(self) -> Counter:
        """How many times each outbox key (X-Keepwell-Key) arrived."""
        return Counter(m["X-Keepwell-Key"] for m in self.messages)

    def wait_for(self, n: int, timeout: float = 30.0) -> list[EmailMessage]:
        wait_until(lambda: len(self.messages) >= n, timeout, what=f"{n} message(s) at the SMTP server")
        return self.messages


class HttpRecorder:
    """A threaded HTTP server on loopback that records each request and answers with the
    status and JSON body given by `respond(request) -> (status, dict)`."""

    def __init__(self, respond=None):
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.respond = respond or (lambda req: (200, {}))
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                req = {"method": "POST", "path": self.path, "headers": dict(self.headers.items()), "body": body}
                with recorder.lock:
                    recorder.requests.append(req)
                status, payload = recorder.respond(req)
                out = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpRecorder:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
