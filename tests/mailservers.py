"""Real servers on loopback for the delivery tests: an SMTP server (aiosmtpd, optional STARTTLS
with a certificate made here, optional login) and an HTTP server that speaks SendGrid's
documented v3 mail/send request and response format, including 429 and error answers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: keeps every accepted message; refuses listed recipients."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    peers: set[Any] = field(default_factory=set)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.peers.add(session.peer)
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def parsed(self) -> list[email.message.EmailMessage]:
        with self.lock:
            raw = [m[2] for m in self.messages]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raw]


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: SmtpRecorder
    controller: Controller
    ca_file: Path | None = None
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    def stop(self) -> None:
        self.controller.stop()


class ClosingController(Controller):
    """A Controller that closes every connection's socket before its loop stops. A TLS
    transport's graceful close needs turns of that loop; stopping it first would leave the
    socket to the garbage collector (a ResourceWarning in whichever test runs then)."""

    def factory(self):
        smtp = super().factory()
        made = smtp.connection_made
        transports = self.__dict__.setdefault("transports", [])

        def connection_made(transport):
            transports.append(transport)  # the plain one, and the TLS one after STARTTLS
            made(transport)

        smtp.connection_made = connection_made
        return smtp

    def stop(self, *args, **kwargs):
        async def abort_all() -> None:
            for transport in self.__dict__.get("transports", []):
                transport.abort()

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(abort_all(), self.loop).result(timeout=5)
        return super().stop(*args, **kwargs)


def start_smtp(
    tmp_path: Path | None = None, *, tls: bool = False, login: tuple[str, str] | None = None
) -> SmtpServer:
    """An aiosmtpd server on 127.0.0.1; with ``tls`` it requires STARTTLS with a certificate
    from a CA made for this test (its PEM written under ``tmp_path``)."""
    recorder = SmtpRecorder()
    port = free_port()
    kwargs: dict[str, Any] = {}
    ca_file = None
    logins: list[tuple[bytes, bytes]] = []
    if tls:
        import trustme

        assert tmp_path is not None
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        ca_file = tmp_path / "test-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        kwargs.update(tls_context=ctx, require_starttls=True)
    if login is not None:
        user, password = login[0].encode(), login[1].encode()

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login,
                auth_data.password,
            ) == (user, password)
            if ok:
                logins.append((auth_data.login, auth_data.password))
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls)
    controller = ClosingController(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return SmtpServer("127.0.0.1", port, recorder, controller, ca_file, logins)


class SendgridState:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.accepted: list[dict[str, Any]] = []
        self.requests = 0
        self.rate_limit_first = 0
        """Answer 429 to this many requests first."""
        self.reject: set[str] = set()
        self.fail_first_5xx = 0
        self.lock = threading.Lock()
        self.auth_headers: list[str] = []


def _handler(state: SendgridState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, code: int, body: dict | None = None, headers: dict | None = None):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            with state.lock:
                state.requests += 1
                n = state.requests
                state.auth_headers.append(self.headers.get("Authorization", ""))
            if self.path != "/v3/mail/send":
                return self._answer(404, {"errors": [{"message": "not found", "field": None}]})
            if self.headers.get("Authorization") != f"Bearer {state.api_key}":
                msg = "The provided authorization grant is invalid, expired, or revoked"
                return self._answer(401, {"errors": [{"message": msg, "field": None}]})
            if n <= state.rate_limit_first:
                reset = str(int(time.time()) + 1)
                head = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"}
                return self._answer(
                    429,
                    {"errors": [{"field": None, "message": "too many requests"}]},
                    {**head, "X-RateLimit-Reset": reset},
                )
            if n <= state.rate_limit_first + state.fail_first_5xx:
                return self._answer(503, {"errors": [{"message": "service unavailable"}]})
            try:
                body = json.loads(raw)
                to = body["personalizations"][0]["to"][0]["email"]
                assert body["from"]["email"] and body["subject"] and body["content"]
            except (ValueError, KeyError, IndexError, AssertionError, TypeError):
                return self._answer(
                    400, {"errors": [{"message": "Bad Request", "field": None, "help": None}]}
                )
            if to in state.reject:
                err = {
                    "message": "Does not contain a valid address.",
                    "field": "personalizations.0.to.0.email",
                    "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html",
                }
                return self._answer(400, {"errors": [err]})
            with state.lock:
                state.accepted.append(body)
            return self._answer(202, None, {"X-Message-Id": f"sg{n}"})

    return Handler


class SendgridServer:
    def __init__(self, api_key: str = "SG.test-key-do-not-log") -> None:
        self.state = SendgridState(api_key)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
