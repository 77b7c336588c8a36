"""A rendered email as a MIME message (multipart/alternative: text, then HTML).

Built as bytes directly rather than through ``email.message.EmailMessage``, which costs more
than rendering the email itself; the standard library's parser reads the result back (tested).
A body is sent as it is (7bit or 8bit UTF-8, RFC 6152) when no line is longer than SMTP's 998
bytes, else as base64; quoted-printable costs four times as long as rendering the HTML did.
Non-ASCII headers are RFC 2047 encoded words.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping
from email.header import Header
from email.utils import formatdate

from sendwise.content.errors import TemplateError
from sendwise.content.message import RenderedEmail


def _header(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise TemplateError("a header value may not contain a line break")
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8").encode()


MAX_LINE = 998
_date: tuple[int, str] = (0, "")


def _now() -> str:
    """The Date header, formatted once per second (it was a tenth of the time of a message)."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, formatdate(second, localtime=False))
    return _date[1]


def _part(kind: str, body: str) -> bytes:
    data = body.encode("utf-8")
    if max(map(len, data.split(b"\n"))) > MAX_LINE:
        encoding, data = "base64", base64.encodebytes(data)
    else:
        encoding = "7bit" if len(data) == len(body) else "8bit"
    head = f"Content-Type: text/{kind}; charset=utf-8\nContent-Transfer-Encoding: {encoding}\n\n"
    return head.encode() + data


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
        f"Date: {date or _now()}",
        f"Message-ID: {message_id or '<' + secrets.token_hex(16) + '@sendwise.local>'}",
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
