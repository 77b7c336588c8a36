"""One contract suite run against every messenger (file outbox, SMTP on a real loopback server
with STARTTLS and login, SendGrid v3 against a local server speaking its format), then what is
particular to each: error classes, connection reuse, rate limits, DKIM, secrets."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from mailservers import SendgridServer, start_smtp
from sendwise.config import SendgridSettings, SmtpSettings
from sendwise.delivery import Messenger, OutgoingMessage, build_mime
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.sendgrid import SendgridMessenger
from sendwise.delivery.smtp import SmtpMessenger
from sendwise.errors import DeliveryError

SMTP_PASSWORD = "smtp-pw-never-logged-7731"
SG_KEY = "SG.api-key-never-logged-8842"


def message(i: int, **changes: Any) -> OutgoingMessage:
    fields: dict[str, Any] = dict(
        key=f"k{i:05d}",
        sender="Shop News <news@shop.example>",
        to=f"customer{i}@example.com",
        subject=f"Hello {i} — déjà vu ☕",
        html=f"<p>Hi customer {i}</p>",
        text=f"Hi customer {i}\n.\nA line with a dot above.",
        unsubscribe_url=f"https://shop.example/email/unsubscribe/tok{i}",
        campaign_id="c1",
        variant="A",
        customer_id=f"cust{i}",
    )
    return OutgoingMessage(**(fields | changes))


@dataclass
class Delivered:
    to: str
    subject: str
    key: str
    list_unsubscribe: str
    list_unsubscribe_post: str
    text: str
    html: str


def _from_mime(msg: email.message.EmailMessage) -> Delivered:
    return Delivered(
        to=str(msg["To"]),
        subject=str(msg["Subject"]),
        key=str(msg["Message-ID"]).strip("<>").split("@")[0],
        list_unsubscribe=str(msg["List-Unsubscribe"]),
        list_unsubscribe_post=str(msg["List-Unsubscribe-Post"]),
        text=msg.get_body(("plain",)).get_content(),
        html=msg.get_body(("html",)).get_content(),
    )


@dataclass
class Rig:
    messenger: Messenger
    delivered: Callable[[], list[Delivered]]


def _outbox(tmp_path: Path) -> Iterator[Rig]:
    folder = tmp_path / "outbox"

    def read() -> list[Delivered]:
        return [
            _from_mime(email.message_from_bytes(p.read_bytes(), policy=email.policy.default))
            for p in sorted(folder.glob("*.eml"))
        ]

    yield Rig(OutboxMessenger(folder), read)


def _smtp(tmp_path: Path) -> Iterator[Rig]:
    server = start_smtp(tmp_path, tls=True, login=("mailer", SMTP_PASSWORD))
    settings = SmtpSettings(
        host=server.host,
        port=server.port,
        username="mailer",
        password=SecretStr(SMTP_PASSWORD),
        starttls=True,
        ca_file=str(server.ca_file),
        connections=3,
    )
    try:
        yield Rig(
            SmtpMessenger(settings), lambda: [_from_mime(m) for m in server.recorder.parsed()]
        )
    finally:
        server.stop()


def _sendgrid(tmp_path: Path) -> Iterator[Rig]:
    server = SendgridServer(SG_KEY)

    def read() -> list[Delivered]:
        return [
            Delivered(
                to=b["personalizations"][0]["to"][0]["email"],
                subject=b["subject"],
                key=b["custom_args"]["message_key"],
                list_unsubscribe=b["headers"]["List-Unsubscribe"],
                list_unsubscribe_post=b["headers"]["List-Unsubscribe-Post"],
                text=b["content"][0]["value"],
                html=b["content"][1]["value"],
            )
            for b in server.state.accepted
        ]

    settings = SendgridSettings(api_key=SecretStr(SG_KEY), base_url=server.url, concurrency=4)
    try:
        yield Rig(SendgridMessenger(settings), read)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_leaked_sockets() -> Iterator[None]:
    """Collect after each test, so a connection left open fails the test that leaked it."""
    yield
    import gc

    gc.collect()


RIGS = {"outbox": _outbox, "smtp": _smtp, "sendgrid": _sendgrid}


@pytest.fixture(params=list(RIGS))
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    yield from RIGS[request.param](tmp_path)


async def _send_all(messenger: Messenger, messages: list[OutgoingMessage]) -> list[Any]:
    limit = asyncio.Semaphore(messenger.concurrency)

    async def one(m: OutgoingMessage) -> Any:
        async with limit:
            return await messenger.send(m)

    async with messenger:
        return await asyncio.gather(*(one(m) for m in messages))


# ---- the contract every messenger passes ---------------------------------------------------


def test_contract_delivers_each_message_once_to_its_recipient(rig: Rig) -> None:
    messages = [message(i) for i in range(40)]
    outcomes = asyncio.run(_send_all(rig.messenger, messages))
    assert [o.status for o in outcomes] == ["sent"] * 40
    got = sorted(rig.delivered(), key=lambda d: d.key)
    assert [d.key for d in got] == [m.key for m in messages]
    for d, m in zip(got, messages, strict=True):
        assert d.to.endswith(m.to)
        assert d.subject == m.subject  # unicode survives
        assert d.list_unsubscribe == f"<{m.unsubscribe_url}>"
        assert d.list_unsubscribe_post == "List-Unsubscribe=One-Click"
        assert d.text.replace("\r\n", "\n").strip() == m.text
        assert m.html in d.html


def test_contract_a_rendered_subject_cannot_inject_headers(rig: Rig) -> None:
    evil = message(1, subject="Sale\r\nBcc: victim@example.com\r\nX-Evil: 1")
    asyncio.run(_send_all(rig.messenger, [evil]))
    (got,) = rig.delivered()
    assert "\n" not in got.subject and got.subject.startswith("Sale")
    mime = email.message_from_bytes(build_mime(evil), policy=email.policy.default)
    assert mime["Bcc"] is None and mime["X-Evil"] is None


def test_contract_idempotent_messengers_store_a_repeat_once(rig: Rig) -> None:
    m = message(7)
    asyncio.run(_send_all(rig.messenger, [m, m]))
    assert len(rig.delivered()) == (1 if rig.messenger.idempotent else 2)


# ---- SMTP ------------------------------------------------------------------------------------


def test_smtp_reuses_its_connections_and_logs_in_over_tls(tmp_path: Path) -> None:
    server = start_smtp(tmp_path, tls=True, login=("mailer", SMTP_PASSWORD))
    settings = SmtpSettings(
        host=server.host,
        port=server.port,
        username="mailer",
        password=SecretStr(SMTP_PASSWORD),
        ca_file=str(server.ca_file),
        connections=2,
    )
    smtp = SmtpMessenger(settings)
    try:
        asyncio.run(_send_all(smtp, [message(i) for i in range(30)]))
    finally:
        server.stop()
    assert len(server.recorder.messages) == 30
    assert smtp.opened == 2 and len(server.recorder.peers) == 2
    assert len(server.logins) == 2


def test_smtp_refuses_plaintext_when_the_server_requires_tls(tmp_path: Path) -> None:
    server = start_smtp(tmp_path, tls=True)
    settings = SmtpSettings(host=server.host, port=server.port, starttls=False, connections=1)
    try:
        (outcome,) = asyncio.run(_send_all(SmtpMessenger(settings), [message(1)]))
    finally:
        server.stop()
    assert outcome.status == "permanent" and "530" in outcome.detail
    assert server.recorder.messages == []


def test_smtp_classifies_refusals_by_reply_code(tmp_path: Path) -> None:
    server = start_smtp()
    server.recorder.refuse = {
        "gone@example.com": "550 5.1.1 No such user",
        "full@example.com": "452 4.2.2 Mailbox full",
    }
    settings = SmtpSettings(host=server.host, port=server.port, starttls=False, connections=1)
    batch = [message(1, to="gone@example.com"), message(2, to="full@example.com"), message(3)]
    try:
        outcomes = asyncio.run(_send_all(SmtpMessenger(settings), batch))
    finally:
        server.stop()
    assert [o.status for o in outcomes] == ["permanent", "transient", "sent"]
    assert "550" in outcomes[0].detail
    assert len(server.recorder.messages) == 1


def test_smtp_bad_login_stops_with_a_message_that_hides_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = start_smtp(tmp_path, tls=True, login=("mailer", "the-right-one"))
    settings = SmtpSettings(
        host=server.host,
        port=server.port,
        username="mailer",
        password=SecretStr(SMTP_PASSWORD),
        ca_file=str(server.ca_file),
        connections=1,
    )
    try:
        with pytest.raises(DeliveryError) as info:
            asyncio.run(_send_all(SmtpMessenger(settings), [message(1)]))
    finally:
        server.stop()
    assert "mailer" in str(info.value)
    assert SMTP_PASSWORD not in str(info.value) + caplog.text + repr(settings)


# ---- SendGrid ------------------------------------------------------------------------------


def _sendgrid_settings(server: SendgridServer, key: str = SG_KEY) -> SendgridSettings:
    return SendgridSettings(api_key=SecretStr(key), base_url=server.url, concurrency=2)


def test_sendgrid_answers_map_to_outcomes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = SendgridServer(SG_KEY)
    server.state.rate_limit_first = 1
    server.state.fail_first_5xx = 1
    server.state.reject = {"bad@example.com"}
    sg = SendgridMessenger(_sendgrid_settings(server))

    async def run() -> list[Any]:
        async with sg:
            return [
                await sg.send(message(1)),
                await sg.send(message(2)),
                await sg.send(message(3, to="bad@example.com")),
                await sg.send(message(4)),
            ]

    try:
        limited, unavailable, refused, sent = asyncio.run(run())
    finally:
        server.stop()
    assert limited.status == "transient" and 0 <= limited.retry_after <= 2
    assert unavailable.status == "transient" and "503" in unavailable.detail
    assert refused.status == "permanent" and "valid address" in refused.detail
    assert sent.status == "sent"
    assert server.state.auth_headers[0] == f"Bearer {SG_KEY}"
    assert SG_KEY not in caplog.text + refused.detail + repr(sg.settings)


def test_sendgrid_wrong_key_stops_the_send_without_echoing_it() -> None:
    server = SendgridServer(SG_KEY)
    wrong = "SG.wrong-key-also-secret"
    try:
        with pytest.raises(DeliveryError, match="401") as info:
            asyncio.run(
                _send_all(SendgridMessenger(_sendgrid_settings(server, wrong)), [message(1)])
            )
    finally:
        server.stop()
    assert wrong not in str(info.value)


# ---- DKIM ----------------------------------------------------------------------------------


def test_dkim_signature_verifies_and_covers_the_unsubscribe_headers() -> None:
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from sendwise.delivery import DkimSigner

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.shop.example."
        return record

    signed = build_mime(message(1), DkimSigner("shop.example", "s1", pem))
    header = email.message_from_bytes(signed)["DKIM-Signature"].replace("\r\n", "")
    signed_names = header.split(" h=")[1].split(";")[0].lower().replace(" ", "").split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} <= set(signed_names)
    assert dkim.verify(signed, dnsfunc=dns)
    tampered = signed.replace(b"tok1", b"tok2")
    assert not dkim.verify(tampered, dnsfunc=dns)
