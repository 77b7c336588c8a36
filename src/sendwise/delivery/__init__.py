"""Delivery: MIME messages, the Messenger interface and its implementations (file outbox, SMTP,
SendGrid), signed links and the crash-safe send pipeline."""

from __future__ import annotations

from sendwise.config import Settings
from sendwise.delivery.messenger import Messenger, Outcome, RateLimiter
from sendwise.delivery.mime import DkimSigner, OutgoingMessage, build_mime, compose
from sendwise.errors import ConfigError

MESSENGERS = ("outbox", "smtp", "sendgrid")

__all__ = [
    "MESSENGERS",
    "DkimSigner",
    "Messenger",
    "Outcome",
    "OutgoingMessage",
    "RateLimiter",
    "build_mime",
    "compose",
    "make_messenger",
]


def make_messenger(settings: Settings, name: str | None = None) -> Messenger:
    """The messenger ``delivery.messenger`` (or ``name``) names, configured from settings."""
    chosen = name or settings.delivery.messenger
    signer = None
    if settings.delivery.dkim is not None:
        signer = DkimSigner.from_settings(settings.delivery.dkim, settings.project)
    if chosen == "outbox":
        from pathlib import Path

        from sendwise.delivery.outbox import OutboxMessenger

        folder = Path(settings.delivery.outbox)
        return OutboxMessenger(
            folder if folder.is_absolute() else settings.path(str(folder)), signer=signer
        )
    if chosen == "smtp":
        from sendwise.delivery.smtp import SmtpMessenger

        return SmtpMessenger(settings.delivery.smtp, signer=signer)
    if chosen == "sendgrid":
        from sendwise.delivery.sendgrid import SendgridMessenger

        return SendgridMessenger(settings.delivery.sendgrid)
    raise ConfigError(f"unknown messenger {chosen!r}; known: {', '.join(MESSENGERS)}")
