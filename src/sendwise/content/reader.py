"""Reading the tokens of a template's customers chunk by chunk, with queries compiled once.

Delivery asks for the tokens of one batch of customers at a time, and building and compiling
the Ibis expressions of a chunk (the profile with its slot variants, the recommendations) cost
~60 ms each, more than reading the rows. On DuckDB,
:class:`~sendwise.warehouse.content_queries.ChunkQuery` compiles the expression
once against a named table of customer ids and then, per chunk, registers the ids as an Arrow
table under that name and runs the SQL (docs/adr/0035-token-queries-compiled-once.md). Other
backends build the expression per chunk, with the ids as a memtable.

The rows become tokens column by column in Arrow (NaN and blank text to null) and are then
split into the token groups, giving exactly what :func:`data.split_row` gives for each row.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sendwise.content import data
from sendwise.content.slots import with_variants
from sendwise.segments.rules import SEPARATOR
from sendwise.warehouse import content_queries as queries
from sendwise.warehouse.content_queries import ChunkQuery

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.content.spec import TemplateSpec
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)
# Text that str.strip() empties: only these characters (RE2 has no Python's notion of space).
# They are the 29 code points of str.isspace(); a test checks the list against Python's.
SPACE_POINTS = (
    *range(0x09, 0x0E),
    *range(0x1C, 0x21),
    0x85,
    0xA0,
    0x1680,
    *range(0x2000, 0x200B),
    0x2028,
    0x2029,
    0x202F,
    0x205F,
    0x3000,
)
_SPACES = "".join(f"\\x{{{c:x}}}" for c in SPACE_POINTS)
BLANK = f"^[{_SPACES}]*$"


def schema_version(wh: Warehouse) -> tuple | None:
    """What the compiled queries depend on: the columns of the tables they read (DuckDB)."""
    return queries.schema_version(wh, (data.PROFILE, data.RECOMMENDATION, "product"))


class TokenReader:
    """The tokens of one template's customers (profile, slot variants, recommendations)."""

    def __init__(
        self,
        wh: Warehouse,
        settings: Settings,
        spec: TemplateSpec,
        fields: frozenset[str] | None = None,
    ) -> None:
        """``fields``: the only ``profile.*`` fields to read (see :mod:`.fields`; None: all)."""
        self.wh, self.settings = wh, settings
        self.version = schema_version(wh)
        table, self.columns = with_variants(data.profile_table(wh), spec.slots, spec.name)
        if fields is not None and fields <= set(table.columns):
            keep = {*data.IDENTITY, *data.SCORES, *self.columns.values(), "segments", *fields}
            table = table.select(*(c for c in table.columns if c in keep))
        self.table, self.n = table, spec.recommendations
        self.profile = ChunkQuery(wh, lambda ids: table.join(ids, "customer_id"))
        self.recs: ChunkQuery | None = None
        if self.n and queries.has_table(wh, data.RECOMMENDATION):
            n = self.n
            self.recs = ChunkQuery(wh, lambda ids: data.recommendations_expr(wh, ids, n))

    def tokens(
        self, customer_ids: Iterable[str] | None, bestsellers: Callable[[], list[dict]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(customer_id, tokens) in the order of ``customer_ids`` (all customers when None)."""
        fallback = bestsellers() if self.n else []
        for rows, order in self._chunks(customer_ids):
            recs = self._recommendations(rows.ids) if self.n else {}
            seen: set[int] = set()
            for i in order:
                tokens = rows.tokens(i)
                if i in seen:  # the same customer twice: tokens of its own
                    tokens = copy.deepcopy(tokens)
                seen.add(i)
                cid = rows.ids[i]
                picks = recs.get(cid, [])
                if len(picks) < self.n:
                    have = {p["id"] for p in picks}
                    extra = [b for b in fallback if b["id"] not in have]
                    picks = picks + extra[: self.n - len(picks)]
                tokens["recommendations"] = picks
                yield cid, tokens

    def _chunks(self, customer_ids: Iterable[str] | None) -> Iterator[tuple[TokenRows, list]]:
        if customer_ids is None:  # every customer: the ids first, no stream held open
            customer_ids = self.table.customer_id.to_pyarrow().to_pylist()
        chunk: list[str] = []
        for cid in customer_ids:
            chunk.append(cid)
            if len(chunk) == data.CHUNK:
                yield self._chunk(chunk)
                chunk = []
        if chunk:
            yield self._chunk(chunk)

    def _chunk(self, ids: list[str]) -> tuple[TokenRows, list[int]]:
        rows = TokenRows(self.profile.run(ids), self.columns)
        at = {cid: i for i, cid in enumerate(rows.ids)}
        missing = [cid for cid in ids if cid not in at]
        if missing:
            logger.warning(
                "%d customer(s) have no profile and are not rendered, e.g. %s",
                len(missing),
                missing[0],
            )
        return rows, [at[cid] for cid in ids if cid in at]

    def _recommendations(self, ids: list[str]) -> dict[str, list[dict]]:
        if self.recs is None or not ids:
            return {}
        return data.group_recommendations(self.recs.run(ids), self.settings, self.n)


class TokenRows:
    """Profile rows as token groups, converted column by column; :meth:`tokens` gives row i."""

    def __init__(self, table: pa.Table, slot_columns: dict[str, str]) -> None:
        names = table.column_names
        self.ids: list[str] = table["customer_id"].to_pylist()
        raw_segments = table["segments"].to_pylist() if "segments" in names else None
        self.segments = raw_segments or [None] * len(self.ids)
        self.slots = {name: table[col].to_pylist() for name, col in slot_columns.items()}
        table = _missing_to_null(table, keep=set(slot_columns.values()))
        skip = {*data.IDENTITY[1:], *data.SCORES, *slot_columns.values()}
        self.customer = _records(table, data.IDENTITY)
        self.scores = _records(table, tuple(data.SCORES))
        self.profile = table.select([n for n in names if n not in skip]).to_pylist()

    def tokens(self, i: int) -> dict[str, Any]:
        scores = self.scores[i]
        if scores["top_reasons"] is None:
            scores["top_reasons"] = []
        return {
            "customer": self.customer[i],
            "profile": self.profile[i],
            "scores": scores,
            "segments": [s for s in (self.segments[i] or "").split(SEPARATOR) if s],
            "slots": {name: values[i] for name, values in self.slots.items()},
        }


def _missing_to_null(table: pa.Table, keep: set[str]) -> pa.Table:
    """NaN and blank text (what :func:`data.blank_to_none` drops) as nulls, except in ``keep``."""
    columns = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        kind = col.type
        if pa.types.is_floating(kind):
            col = pc.if_else(pc.is_nan(col), pa.scalar(None, kind), col)
        elif name not in keep and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            col = pc.if_else(pc.match_substring_regex(col, BLANK), pa.scalar(None, kind), col)
        columns.append(col)
    return pa.table(columns, names=table.column_names)


def _records(table: pa.Table, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of ``keys`` as dicts in that order, None for a key the table does not have."""
    present = [k for k in keys if k in table.column_names]
    rows = table.select(present).to_pylist()
    if len(present) < len(keys):
        rows = [{k: r.get(k) for k in keys} for r in rows]
    return rows
