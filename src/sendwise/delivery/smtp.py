"""SMTP through aiosmtplib: TLS (STARTTLS or implicit), login, a pool of reused connections used
concurrently. Replies 4xx are transient, 5xx permanent; a dropped connection is reopened."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Literal

import aiosmtplib

from sendwise.config import SmtpSettings
from sendwise.delivery.messenger import SENT, Outcome
from sendwise.delivery.mime import DkimSigner, OutgoingMessage, build_mime
from sendwise.errors import DeliveryError

logger = logging.getLogger(__name__)


class SmtpMessenger:
    name = "smtp"
    idempotent = False

    def __init__(self, settings: SmtpSettings, *, signer: DkimSigner | None = None) -> None:
        self.settings = settings
        self.signer = signer
        self.concurrency = settings.connections
        self.opened = 0
        """Connections opened so far (reuse means this stays at most ``connections``)."""
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] | None = None

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.settings.ca_file)
        if not self.settings.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.tls,
            start_tls=s.starttls and not s.tls,
            tls_context=self._tls_context() if (s.tls or s.starttls) else None,
            timeout=s.timeout,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            if s.username:
                password = s.password.get_secret_value() if s.password else ""
                await client.login(s.username, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            _drop(client)
            raise DeliveryError(
                f"SMTP login as {s.username!r} refused by {s.host}:{s.port} ({exc.code})"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            _drop(client)
            raise ConnectionError(f"cannot connect to {s.host}:{s.port}: {exc}") from None
        self.opened += 1
        logger.debug("SMTP connection %d to %s:%d open", self.opened, s.host, s.port)
        return client

    async def __aenter__(self) -> SmtpMessenger:
        self._idle = asyncio.Queue()
        for _ in range(self.concurrency):
            self._idle.put_nowait(None)  # a slot; connected on first use
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._idle is not None
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client is not None:
                try:
                    if client.is_connected:
                        await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    pass
                finally:
                    _drop(client)

    async def send(self, message: OutgoingMessage) -> Outcome:
        assert self._idle is not None, "use the messenger as `async with`"
        client = await self._idle.get()
        try:
            if client is None or not client.is_connected:
                client = await self._connect()
            await _transaction(
                client, _envelope(message.sender), message.to, build_mime(message, self.signer)
            )
            return SENT
        except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPSenderRefused) as exc:
            return _by_code(exc.code, exc.message)  # the transaction was reset; keep the line
        except aiosmtplib.SMTPResponseException as exc:
            if client is not None:
                _drop(client)
                client = None
            return _by_code(exc.code, exc.message)
        except (ConnectionError, aiosmtplib.SMTPException, OSError) as exc:
            if client is not None:
                _drop(client)
            client = None
            return Outcome("transient", f"connection: {exc}")
        finally:
            self._idle.put_nowait(client)


async def _transaction(client: aiosmtplib.SMTP, sender: str, to: str, data: bytes) -> None:
    """MAIL, RCPT, DATA for one message. ``client.sendmail`` would parse both addresses six
    times with email.utils (a quarter of the client's time); ours are already plain addresses.
    Non-ASCII addresses (SMTPUTF8) take sendmail's path."""
    if not (sender.isascii() and to.isascii()):
        await client.sendmail(sender, [to], data)
        return
    reply = await client.execute_command(b"MAIL", b"FROM:<" + sender.encode() + b">")
    if reply.code != 250:
        await client.rset()
        raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
    reply = await client.execute_command(b"RCPT", b"TO:<" + to.strip().encode() + b">")
    if reply.code not in (250, 251):
        await client.rset()
        raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, to)
    await client.data(data)


def _drop(client: aiosmtplib.SMTP) -> None:
    """Close now: a TLS transport's graceful close needs more loop turns than a failing or
    ending send has, and would leave the socket open."""
    transport = client.transport
    client.close()
    if transport is not None:
        transport.abort()  # type: ignore[attr-defined]  # an asyncio.Transport


def _envelope(address: str) -> str:
    from email.utils import parseaddr

    return parseaddr(address)[1]


def _by_code(code: int, text: str) -> Outcome:
    status: Literal["permanent", "transient"] = "permanent" if 500 <= code < 600 else "transient"
    return Outcome(status, f"SMTP {code} {text}".strip())
