"""A real webhook receiver on loopback for the delivery tests: an ``http.server`` in a thread
that verifies every request with the official ``standardwebhooks`` package, keeps what it
received, and answers from a script (``500`` a few times, ``503`` while down, ``410`` ...)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    timestamp: int
    body: bytes
    verified: bool
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    secret: str | None = None
    script: list[int] = field(default_factory=list)
    """Statuses answered first, in order; then ``default``."""
    default: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers on every answer (``Retry-After`` ...)."""
    seen: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, head: dict[str, str], body: bytes) -> int:
        verified = False
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(body, head, json_parse=False)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self.lock:
            status = self.script.pop(0) if self.script else self.default
            if not verified:
                status = 401
            self.seen.append(
                Received(
                    head.get("webhook-id", ""),
                    int(head.get("webhook-timestamp", "0") or 0),
                    body,
                    verified,
                    status,
                )
            )
        return status

    @property
    def acknowledged(self) -> list[Received]:
        return [r for r in self.seen if 200 <= r.status < 300]


@contextmanager
def running_receiver(receiver: Receiver | None = None) -> Iterator[Receiver]:
    receiver = receiver or Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            head = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answer(head, body)
            self.send_response(status)
            for k, v in receiver.headers.items():
                self.send_header(k, v)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
