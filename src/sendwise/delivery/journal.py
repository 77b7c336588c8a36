"""The acceptance journal: closes the gap between a server accepting a message and the store
recording it.

The pipeline records outcomes a batch at a time. A messenger without idempotency (SMTP, an ESP)
that accepted a message just before the process was killed would otherwise get it again on the
rerun. So the key of every accepted message is appended to a small local file the moment the
server answers (one ``write`` of a few bytes, O_APPEND), and the next run first records those
keys as sent before it hands anything over. The file is emptied once a batch is committed. Only
a kill in the microseconds between the server's answer and that write can still repeat a message.
"""

from __future__ import annotations

import os
from pathlib import Path


class Journal:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None

    def replay(self) -> list[str]:
        """Keys accepted by a run that did not get to record them (complete lines only)."""
        if self.path is None or not self.path.exists():
            return []
        text = self.path.read_bytes().decode("ascii", errors="ignore")
        return [k for k in text.split("\n")[:-1] if k]

    def open(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, 0o600)

    def accepted(self, key: str) -> None:
        if self._fd is not None:
            os.write(self._fd, key.encode("ascii") + b"\n")

    def clear(self) -> None:
        """Forget the keys: the store has recorded them."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        elif self.path is not None and self.path.exists():
            self.path.write_bytes(b"")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
