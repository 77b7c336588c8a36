"""A rendered email as a MIME message (multipart/alternative: text, then HTML).

Built as bytes directly rather than through ``email.message.EmailMessage``, which costs more
than rendering the email itself; the standard library's parser reads the result back (tested).
Bodies are quoted-printable, readable in a text editor; non-ASCII headers are RFC 2047 words.
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Mapping
from email.header import Header
from email.utils import formatdate, make_msgid

from sendwise.content.errors import TemplateError
from sendwise.content.message import RenderedEmail


def _header(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise TemplateError("a header value may not contain a line break")
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8").encode()


def _part(kind: str, body: str) -> bytes:
    encoded = binascii.b2a_qp(body.encode("utf-8"))
    head = (
        f"Content-Type: text/{kind}; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    )
    return head.encode() + encoded


def to_mime(
    email: RenderedEmail,
    *,
    to: str,
    sender: str,
    message_id: str | None = None,
    date: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The message as bytes with LF line ends (an ``.eml`` file; SMTP libraries convert)."""
    boundary = "sw-" + secrets.token_hex(12)
    lines = [
        f"From: {_header(sender)}",
        f"To: {_header(to)}",
        f"Subject: {_header(email.subject)}",
        f"Date: {date or formatdate(localtime=False)}",
        f"Message-ID: {message_id or make_msgid(domain='sendwise.local')}",
        "MIME-Version: 1.0",
    ]
    lines += [f"{k}: {_header(v)}" for k, v in (headers or {}).items()]
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    sep = f"\n--{boundary}\n".encode()
    return b"".join(
        (
            "\n".join(lines).encode(),
            b"\n",
            sep,
            _part("plain", email.text),
            sep,
            _part("html", email.html),
            f"\n--{boundary}--\n".encode(),
        )
    )
