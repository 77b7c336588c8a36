"""The one MIME builder: every message sendwise writes, sent or previewed, is these bytes.

multipart/alternative (text, then HTML), a Message-ID made from the message key, RFC 8058
one-click unsubscribe headers, optional DKIM. :func:`compose` turns a rendered email into the
:class:`OutgoingMessage` of one recipient (click tracking, campaign headers) and
:func:`build_mime` makes its bytes; the send pipeline and the previews
(:mod:`sendwise.delivery.previews`: ``sendwise render --out``, ``--segment``, the demo) call
both, so a preview of a campaign's message is byte for byte what is sent, except its Date
(docs/adr/0080-one-mime-builder.md).

The bytes are assembled directly rather than through :mod:`email.generator`, which costs ~10x
more per message: a body is 7bit when it is ASCII with lines of at most 998 characters, else
quoted-printable (by :mod:`binascii`), never 8bit, which a relay without 8BITMIME would re-encode
and so break the DKIM signature. Tests parse messages back with the standard library.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from pathlib import Path

from sendwise.config import DkimSettings
from sendwise.content.message import RenderedEmail
from sendwise.delivery.live_links import resolve as resolve_live
from sendwise.delivery.tracking_links import track_html
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
    if value.isprintable() and "  " not in value and value.strip() == value:
        return value  # nothing to change (the usual case), without splitting it
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


@functools.lru_cache(maxsize=64)
def _parsed(value: str) -> tuple[str, str]:
    return email.utils.parseaddr(clean_header(value))


def _address(value: str) -> str:
    if value.isascii() and value.isprintable() and "<" not in value and '"' not in value:
        return value.strip()  # a bare address (the usual recipient): no parsing needed
    name, addr = _parsed(value)
    return email.utils.formataddr((name, addr), charset="utf-8") if name else addr


def _subject(value: str) -> str:
    value = clean_header(value)
    if value.isascii() and value.isprintable() and "=?" not in value and len(value) < 900:
        return value  # else encoded words, which a reader cannot mistake for anything else
    return Header(value, "utf-8", header_name="Subject").encode(linesep="\r\n")


MAX_LINE = 998
"""Longest line SMTP carries (RFC 5322 2.1.1), without its CRLF."""
_NOT_7BIT = re.compile(rf"[^\n]{{{MAX_LINE + 1}}}|\x00")


def _part(content_type: str, body: str, delimiter: bytes) -> bytes:
    """One body part. CR and CRLF line ends become CRLF, and a CRLF is added for the boundary
    line that follows (RFC 2046 5.1.1: that line break is the delimiter's, so a parser gives
    back the text as it was, a final line break included). A text that holds the delimiter
    (a boundary is made from the message key, which is no secret) is sent as base64, whose
    alphabet cannot spell it."""
    text = body.replace("\r\n", "\n").replace("\r", "\n") + "\n"
    data = text.replace("\n", "\r\n").encode("utf-8")
    if text.isascii() and _NOT_7BIT.search(text) is None:
        encoding = "7bit"
    else:
        encoding = "quoted-printable"
        data = binascii.b2a_qp(data, quotetabs=False, istext=True)
    if delimiter in data:
        encoding = "base64"
        raw = text[:-1].replace("\n", "\r\n").encode("utf-8")  # its last line ends the data
        data = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    head = f'Content-Type: {content_type}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}'
    return head.encode("ascii") + b"\r\n\r\n" + data


def compose(
    rendered: RenderedEmail,
    *,
    key: str,
    to: str,
    sender: str,
    links: Mapping[str, str],
    tracking: tuple[str, bytes] | None = None,
    campaign_id: str = "",
    variant: str = "",
    customer_id: str = "",
) -> OutgoingMessage:
    """The message ``rendered`` becomes for one recipient. ``links``: those it was rendered with
    (its ``unsubscribe`` link is also the List-Unsubscribe header); ``tracking``: (base URL,
    signing key) to add signed click links, the open pixel and the live slots' links; a
    campaign's message carries X-Sendwise-Campaign and X-Sendwise-Variant."""
    html = rendered.html
    if tracking is not None:  # live slots first: their links go to the service, untracked
        html = resolve_live(html, tracking[0], tracking[1], key, customer_id)
        html = track_html(html, tracking[0], tracking[1], key)
    headers = (
        {"X-Sendwise-Campaign": campaign_id, "X-Sendwise-Variant": variant} if campaign_id else {}
    )
    return OutgoingMessage(
        key=key,
        sender=sender,
        to=to,
        subject=rendered.subject,
        html=html,
        text=rendered.text,
        unsubscribe_url=links["unsubscribe"],
        campaign_id=campaign_id,
        variant=variant,
        customer_id=customer_id,
        headers=headers,
    )


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
        **{name: clean_header(value) for name, value in message.list_headers().items()},
        **{name: clean_header(value) for name, value in message.headers.items()},
        "Content-Type": f'multipart/alternative; boundary="{boundary}"',
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("utf-8")
    delimiter = f"--{boundary}".encode("ascii")
    sep = delimiter + b"\r\n"
    body = (
        sep
        + _part("text/plain", message.text, delimiter)
        + sep
        + _part("text/html", message.html, delimiter)
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
