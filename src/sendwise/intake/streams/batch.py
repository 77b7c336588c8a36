"""One batch of parsed stream entries into the event log: the step every broker's consumer
shares (Redis Streams, Kafka), between parsing its entries and acknowledging them."""

from __future__ import annotations

import logging
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
