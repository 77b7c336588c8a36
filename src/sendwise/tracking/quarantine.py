"""The tracking quarantine: events that were answered (or are about to be) but cannot be stored.

One JSON line per event in ``<project>/quarantine/tracking.jsonl``: when, why, and the event as
it arrived. It is a file, not a store table, on purpose: the store being down is one of the
reasons an event lands here (docs/adr/0056-tracking-quarantine.md). Lines are appended with one
``write`` per batch on a file opened with ``O_APPEND`` and fsynced before the caller goes on,
so several worker processes can share it and an entry survives a crash.

:func:`replay` writes the quarantined events back to the store once the cause is fixed (the
store back, a bug fixed); the ones that still fail stay in the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FOLDER = "quarantine"
FILE = "tracking.jsonl"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def reason_of(exc: BaseException) -> str:
    """A short, one-line reason for an exception: the driver's message without SQL or the
    statement's parameters (they may hold addresses)."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{inner.__class__.__name__}: {text}"[:300]


class Quarantine:
    """Append-only file of events that could not be stored, each with its reason."""

    def __init__(self, path: Path | str | None) -> None:
        self.path = Path(path) if path is not None else None
        self.added = 0

    @classmethod
    def of_project(cls, project: Path) -> Quarantine:
        return cls(Path(project) / FOLDER / FILE)

    def add(self, items: Iterable[tuple[Mapping[str, Any] | Any, str]], *, kind: str) -> int:
        """Append ``(event, reason)`` pairs durably; the number written. ``kind``: ``write``
        (the store refused the event) or ``invalid`` (it failed validation on the way in)."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        lines = [
            json.dumps(
                {"at": at, "kind": kind, "reason": reason, "event": event},
                default=_plain,
                ensure_ascii=True,
                allow_nan=True,
            )
            for event, reason in items
        ]
        if not lines:
            return 0
        if self.path is None:
            logger.error("%d tracking events not stored and no quarantine file", len(lines))
            return 0
        _append_lines(self.path, lines)
        self.added += len(lines)
        logger.warning("%d tracking event(s) quarantined in %s", len(lines), self.path)
        return len(lines)

    def entries(self) -> list[dict[str, Any]]:
        """Every line of the file, parsed (an empty list when there is none)."""
        if self.path is None or not self.path.exists():
            return []
        with self.path.open(encoding="ascii") as fh:
            return [json.loads(line) for line in fh if line.strip()]


@dataclass
class Replay:
    stored: int = 0
    kept: int = 0


def _restore(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    when = out.get("occurred_at")
    if isinstance(when, str):
        with contextlib.suppress(ValueError):
            out["occurred_at"] = datetime.fromisoformat(when)
    return out


def replay(
    quarantine: Quarantine, write: Callable[[Sequence[Mapping[str, Any]]], list[str | None]]
) -> Replay:
    """Write the quarantined ``write`` entries again with ``write`` (the recorder's
    write-or-report function). The file is first moved aside, so a running service keeps
    appending to a new one; the entries that still fail and the ``invalid`` ones (those need a
    person) are appended back. If ``write`` raises (the store is still down), every entry is."""
    if quarantine.path is None or not quarantine.path.exists():
        return Replay()
    aside = quarantine.path.with_name(quarantine.path.name + ".replaying")
    os.replace(quarantine.path, aside)
    entries = Quarantine(aside).entries()
    retry = [
        i
        for i, e in enumerate(entries)
        if e.get("kind") == "write" and isinstance(e.get("event"), dict)
    ]
    again = set(retry)
    keep = [e for i, e in enumerate(entries) if i not in again]
    report = Replay()
    try:
        outcomes = write([_restore(entries[i]["event"]) for i in retry]) if retry else []
    except BaseException:
        _append(quarantine.path, entries)
        aside.unlink()
        raise
    for i, reason in zip(retry, outcomes, strict=True):
        if reason is None:
            report.stored += 1
        else:
            keep.append({**entries[i], "reason": reason})
    _append(quarantine.path, keep)
    aside.unlink()
    report.kept = len(keep)
    return report


def _append(path: Path, entries: Sequence[Mapping[str, Any]]) -> None:
    if entries:
        _append_lines(path, [json.dumps(e, ensure_ascii=True) for e in entries])


def _append_lines(path: Path, lines: Sequence[str]) -> None:
    """One write on an O_APPEND file, fsynced: concurrent writers' lines do not interleave."""
    data = ("\n".join(lines) + "\n").encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
