"""One batch of parsed stream entries into the event log: the step every broker's consumer
shares (Redis Streams, Kafka), between parsing its entries and acknowledging them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sendwise.errors import StoreError
from sendwise.intake.streams.entries import Dead, Fields, Parsed
from sendwise.intake.writer import append_unique

logger = logging.getLogger(__name__)


def refused_reason(exc: BaseException) -> str:
    """A dead letter's reason for a row the store refused."""
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"the store refused it: {exc.__class__.__name__}" + (f": {text}" if text else "")


def store_batch(
    repos: Any,
    parsed: Parsed,
    fields: Mapping[str, Fields | None],
    confirm: Callable[[str, str], str] | None,
    mail: Callable[[list[Any]], Any] | None,
) -> list[bool]:
    """``append_unique`` of the batch's rows in one store transaction; one flag per stored
    row, True when it was new. When the store refuses the batch, it is tried row by row and
    the rows it refuses alone are added to ``parsed.dead`` (with ``fields[entry_id]``, the
    entry as it came); when it refuses every row it is down: :class:`StoreError`, and the
    caller acknowledges nothing of the batch."""
    rows = parsed.rows
    if not rows:
        return []
    sent: list[Any] = []
    try:
        stored = append_unique(repos, rows, confirm=confirm, sent=sent)
        if sent and mail is not None:
            mail(sent)
        return stored
    except Exception as exc:
        if len(rows) == 1:
            raise StoreError(refused_reason(exc)) from exc
        logger.warning("a batch of %d stream entries not stored; one by one", len(rows))
    new: list[bool] = []
    refused: list[tuple[str, BaseException]] = []
    for row, entry_id in zip(rows, parsed.row_ids, strict=True):
        try:
            new.extend(append_unique(repos, [row], confirm=confirm, sent=sent))
        except Exception as exc:
            refused.append((entry_id, exc))
    if len(refused) == len(rows):
        raise StoreError(refused_reason(refused[0][1]))
    if sent and mail is not None:
        mail(sent)
    for entry_id, error in refused:
        parsed.dead.append(Dead(entry_id, refused_reason(error), dict(fields.get(entry_id) or {})))
    return new


def run_rounds(
    poll: Callable[[], int],
    idle: Callable[[], bool],
    on_store_error: Callable[[], None],
    report: Any,
    started: float,
    *,
    stop: threading.Event,
    until_idle: bool,
    on_progress: Callable[[Any], None] | None,
    progress_seconds: float,
    max_backoff: float,
) -> None:
    """A consumer's loop, whatever its broker: ``poll`` rounds until ``stop`` is set (or, with
    ``until_idle``, until a round takes nothing and ``idle()`` says the group holds nothing
    more). A round whose batch the store refused (:class:`StoreError`) is followed by
    ``on_store_error`` (take the batch again) and a pause of 0.5 s doubling up to
    ``max_backoff``; ``report.seconds`` is kept up to date and shown every ``progress_seconds``."""
    backoff = 0.5
    shown = time.monotonic()
    while not stop.is_set():
        try:
            taken = poll()
            backoff = 0.5
        except StoreError as exc:
            logger.error("stream batch not stored (retrying in %.1f s): %s", backoff, exc)
            on_store_error()
            stop.wait(backoff)
            backoff = min(backoff * 2, max_backoff)
            continue
        report.seconds = time.monotonic() - started
        if on_progress is not None and time.monotonic() - shown >= progress_seconds:
            shown = time.monotonic()
            on_progress(report)
        if until_idle and taken == 0 and idle():
            break
    report.seconds = time.monotonic() - started
