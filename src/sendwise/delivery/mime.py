"""Building the MIME message: multipart/alternative, a unique Message-ID, RFC 8058 one-click
unsubscribe headers, optional DKIM.

The bytes are assembled directly (quoted-printable bodies by :mod:`binascii`) rather than through
:mod:`email.generator`, which costs ~10x more per message; tests parse every message back with
the standard library to prove it is well formed.
"""

from __future__ import annotations

import binascii
import email.utils
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from pathlib import Path

from sendwise.config import DkimSettings
from sendwise.errors import ConfigError

SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"MIME-Version",
    b"Content-Type",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
)


@dataclass(frozen=True)
class OutgoingMessage:
    """One message as handed to a messenger: the parts an ESP API wants, and the MIME bytes an
    SMTP server or the outbox wants."""

    key: str
    """Idempotency key (the store's message_key)."""
    sender: str
    to: str
    subject: str
    html: str
    text: str
    unsubscribe_url: str
    campaign_id: str = ""
    variant: str = ""
    customer_id: str = ""
    date: datetime | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """Extra headers such as X-Sendwise-Campaign."""

    @property
    def domain(self) -> str:
        return _parsed(self.sender)[1].rpartition("@")[2] or "sendwise.invalid"

    @property
    def message_id(self) -> str:
        return f"<{self.key}@{self.domain}>"

    def list_headers(self) -> dict[str, str]:
        return {
            "List-Unsubscribe": f"<{self.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }


def clean_header(value: str) -> str:
    """A header value with no line breaks: a rendered subject cannot inject headers."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


@functools.lru_cache(maxsize=64)
def _parsed(value: str) -> tuple[str, str]:
    return email.utils.parseaddr(clean_header(value))


def _address(value: str) -> str:
    if value.isascii() and "<" not in value and '"' not in value and "\n" not in value:
        return value.strip()  # a bare address (the usual recipient): no parsing needed
    name, addr = _parsed(value)
    return email.utils.formataddr((name, addr), charset="utf-8") if name else addr


def _subject(value: str) -> str:
    value = clean_header(value)
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", header_name="Subject").encode(linesep="\r\n")


def _qp(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode("utf-8")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return binascii.b2a_qp(data, quotetabs=False, istext=True)


def _part(content_type: str, body: str) -> bytes:
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + _qp(body)


def build_mime(message: OutgoingMessage, signer: DkimSigner | None = None) -> bytes:
    """The message as RFC 5322 bytes with CRLF line ends, DKIM-signed when ``signer`` is set."""
    boundary = "=_sw_" + hashlib.blake2b(message.key.encode(), digest_size=12).hexdigest()
    date = message.date or datetime.now().astimezone()
    headers = {
        "From": _address(message.sender),
        "To": _address(message.to),
        "Subject": _subject(message.subject),
        "Date": email.utils.format_datetime(date),
        "Message-ID": message.message_id,
        "MIME-Version": "1.0",
        **message.list_headers(),
        **{name: clean_header(value) for name, value in message.headers.items()},
        "Content-Type": f'multipart/alternative; boundary="{boundary}"',
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("utf-8")
    sep = f"--{boundary}\r\n".encode("ascii")
    body = (
        sep
        + _part("text/plain", message.text)
        + sep
        + _part("text/html", message.html)
        + f"--{boundary}--\r\n".encode("ascii")
    )
    raw = head + b"\r\n" + body
    return signer.sign(raw) if signer is not None else raw


class DkimSigner:
    """DKIM signing with dkimpy; List-Unsubscribe and List-Unsubscribe-Post are signed, as
    mailbox providers require for one-click unsubscribe."""

    def __init__(self, domain: str, selector: str, private_key: bytes) -> None:
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self.private_key = private_key

    @classmethod
    def from_settings(cls, dkim: DkimSettings, project: Path) -> DkimSigner:
        path = Path(dkim.key_file)
        path = path if path.is_absolute() else project / path
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"delivery.dkim.key_file {path}: {exc.strerror}") from None
        return cls(dkim.domain, dkim.selector, key)

    def sign(self, raw: bytes) -> bytes:
        import dkim

        signature = dkim.sign(
            raw,
            self.selector,
            self.domain,
            self.private_key,
            include_headers=list(SIGNED_HEADERS),
            linesep=b"\r\n",
        )
        return signature + raw
