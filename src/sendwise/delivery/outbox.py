"""The file outbox: one ``.eml`` file per message, the default messenger (no mail server needed).

Each file is written under a temporary name and then hard-linked to ``<key>.eml``; the link fails
if the file exists, so a message handed over twice (a crash and a rerun) is stored once.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sendwise.delivery.messenger import SENT, Outcome
from sendwise.delivery.mime import DkimSigner, OutgoingMessage, build_mime


class OutboxMessenger:
    name = "outbox"
    idempotent = True

    def __init__(self, folder: Path, *, signer: DkimSigner | None = None) -> None:
        self.folder = Path(folder)
        self.signer = signer
        self.concurrency = 1  # plain file writes: concurrency would only add overhead

    async def __aenter__(self) -> OutboxMessenger:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.eml"

    async def send(self, message: OutgoingMessage) -> Outcome:
        final = self.path(message.key)
        if final.exists():
            return SENT
        tmp = self.folder / f".{message.key}.{os.getpid()}.tmp"
        try:
            tmp.write_bytes(build_mime(message, self.signer))
            with contextlib.suppress(FileExistsError):  # a rerun already stored it
                os.link(tmp, final)
        except OSError as exc:
            return Outcome("transient", f"outbox write failed: {exc.strerror}")
        finally:
            tmp.unlink(missing_ok=True)
        return SENT
